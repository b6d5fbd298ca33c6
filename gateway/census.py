"""A census list as an organiser's spreadsheet exports it (CSV), read strictly at the
edge: every row is checked before anything is sent, so a file with one bad line
imports nothing and says which lines are wrong.

Columns (a header line is required; names are matched without regard to case):

=============  ========  ===============================================================
column         required  value
=============  ========  ===============================================================
family_name    yes       as written (accents, case and punctuation do not matter)
given_name     yes       as written
birth_date     yes       ``YYYY-MM-DD`` or ``DD/MM/YYYY``
district       no        the district of residence (letters, digits, ``-``, ``_``, ``.`` and ``:``)
email          no        lets the person claim their entry by their account's address
resident       no        ``yes``/``no`` (``oui``/``non``, ``true``/``false``, ``1``/``0``);
                         empty: yes
=============  ========  ===============================================================

Other columns are ignored. A file whose headers are named otherwise maps them with the
``columns`` parameter: ``family_name=nom,given_name=prenom,birth_date=naissance``.
Separators: comma, semicolon or tab (as found on the header line); UTF-8, with or
without a byte order mark.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from urne.contracts.commands import CensusRow

FIELDS = ("family_name", "given_name", "birth_date", "district", "email", "resident")
REQUIRED = ("family_name", "given_name", "birth_date")
# ~140,000 people a request: read and imported in about 27 s embedded, 50 s on
# Cassandra (python -m loadtests.census); a city's list is sent in parts.
MAX_BYTES = 8 * 1024 * 1024
MAX_ERRORS = 20  # lines reported in one answer
YES = {"", "yes", "y", "oui", "o", "true", "1"}
NO = {"no", "n", "non", "false", "0"}
_row = TypeAdapter(CensusRow)


class CensusFileError(ValueError):
    """What is wrong with the file: ``errors`` (line numbers are the file's own)."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def mapping(columns: str | None) -> tuple[dict[str, str], set[str]]:
    """Our field -> the file's header, from ``columns`` (``ours=theirs,...``), and the
    fields ``columns`` names (each must be found: a mistyped header is an error, not a
    column quietly left out)."""
    chosen = {f: f for f in FIELDS}
    named: set[str] = set()
    for pair in (columns or "").split(","):
        if not pair.strip():
            continue
        ours, sep, theirs = pair.partition("=")
        if not sep or ours.strip() not in FIELDS or not theirs.strip():
            raise CensusFileError([f"columns: {pair.strip()!r} is not field=header with a field "
                                   f"among {', '.join(FIELDS)}"])
        chosen[ours.strip()] = theirs.strip()
        named.add(ours.strip())
    return {ours: theirs.casefold() for ours, theirs in chosen.items()}, named


def birth_date(text: str) -> date:
    text = text.strip()
    for form in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise ValueError(f"birth_date {text[:40]!r} is not YYYY-MM-DD or DD/MM/YYYY")


def resident(text: str) -> bool:
    value = text.strip().casefold()
    if value in YES:
        return True
    if value in NO:
        return False
    raise ValueError(f"resident {text[:20]!r} is not yes or no")


def read(data: bytes, columns: str | None = None) -> list[CensusRow]:
    """The rows of a census file, or ``CensusFileError`` naming what is wrong."""
    wanted, named = mapping(columns)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CensusFileError([f"the file is not UTF-8 (byte {exc.start})"]) from exc
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _rows(reader, wanted, named)
    except csv.Error as exc:  # a field beyond the csv module's limit, a stray NUL
        raise CensusFileError([f"line {reader.line_num}: {exc}"]) from exc


def _rows(reader: Any, wanted: dict[str, str], named: set[str]) -> list[CensusRow]:
    header = next(reader, None)
    if header is None:
        raise CensusFileError(["the file is empty"])
    position = {name.strip().casefold(): i for i, name in enumerate(header)}
    missing = [f"{ours} ({theirs!r})" for ours, theirs in wanted.items()
               if (ours in REQUIRED or ours in named) and theirs not in position]
    if missing:
        raise CensusFileError([f"line 1: no column for {', '.join(missing)}"])
    present = {ours: position[theirs] for ours, theirs in wanted.items() if theirs in position}
    rows: list[CensusRow] = []
    errors: list[str] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # blank lines, as spreadsheets leave them
        line = reader.line_num
        try:
            rows.append(_parse(cells, present))
        except (ValueError, ValidationError) as exc:
            errors.append(f"line {line}: {_reason(exc)}")
            if len(errors) >= MAX_ERRORS:
                break
    if errors:
        raise CensusFileError(errors)
    if not rows:
        raise CensusFileError(["the file has no rows"])
    return rows


def _parse(cells: list[str], present: dict[str, int]) -> CensusRow:
    def cell(field: str) -> str:
        i = present.get(field)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    value: dict[str, Any] = {"family_name": cell("family_name"),
                             "given_name": cell("given_name"),
                             "birth_date": birth_date(cell("birth_date")),
                             "resident": resident(cell("resident"))}
    for optional in ("district", "email"):
        if cell(optional):
            value[optional] = cell(optional)
    return _row.validate_python(value)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)
