"""Results exports: the published tally as flat rows, one per option (or project), for
spreadsheets (CSV) and scripts (JSON). A pure function of the signed result document
(its rules and its tally); which results may be exported is the tally's to decide, as
for every other route that shows them. docs/api.md ("Results exports") lists the
columns of each method.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

EXPORT_FORMAT = "urne.results-export.v1"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# such text (an option's title, a grade) is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, Any]


def flatten(result: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """The columns and the rows of a signed result's tally (``result`` is the document
    that is signed: ``rules`` and ``tally`` in it)."""
    rules, tally = result["rules"], result["tally"]
    method = tally["method"]
    if method == "yes_no_abstain":
        return _yes_no_abstain(tally)
    if method == "budget":
        return _budget(rules, tally)
    titles = {o["id"]: o["title"] for o in rules["options"]}
    if method == "approval":
        return _seats(titles, tally, ["approvals"],
                      lambda i: {"approvals": tally["counts"][i]}, lambda i: tally["counts"][i])
    if method == "ranking":
        return _seats(titles, tally, ["points", "first_preferences"],
                      lambda i: {"points": tally["points"][i],
                                 "first_preferences": tally["first_preferences"][i]},
                      lambda i: tally["points"][i])
    if method == "majority_judgment":
        grades = [f"grade:{g}" for g in rules["grades"]]
        return _seats(titles, tally, ["majority_grade", *grades],
                      lambda i: {"majority_grade": tally["majority_grade"].get(i),
                                 **dict(zip(grades, tally["grades"][i], strict=True))},
                      lambda i: tally["grades"][i])
    raise ValueError(f"no export for the voting method {method!r}")


def _yes_no_abstain(tally: dict[str, Any]) -> tuple[list[str], list[Row]]:
    won = {"adopted": "yes", "rejected": "no"}.get(tally["outcome"])
    return (["option_id", "votes", "winner"],
            [{"option_id": answer, "votes": n, "winner": answer == won}
             for answer, n in tally["counts"].items()])


def _seats(titles: dict[str, str], tally: dict[str, Any], scores: list[str],
           values: Callable[[str], Row], score: Callable[[str], object],
           ) -> tuple[list[str], list[Row]]:
    """Options in the published ranking, best first; ``rank`` is shared by equal scores
    (1, 2, 2, 4), whose order is the rules'."""
    winners, tied = set(tally["winners"]), set(tally["tied"])
    rows: list[Row] = []
    for position, option in enumerate(tally["ranking"], start=1):
        same = rows and score(rows[-1]["option_id"]) == score(option)
        rows.append({"rank": rows[-1]["rank"] if same else position, "option_id": option,
                     "title": titles[option], **values(option),
                     "winner": option in winners, "tied": option in tied})
    return ["rank", "option_id", "title", *scores, "winner", "tied"], rows


def _budget(rules: dict[str, Any], tally: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """Per district (``*``: the whole poll's single budget), its projects in its ranking
    (by votes, then cost, then rules order: no ties)."""
    projects = {p["id"]: p for p in rules["projects"]}
    rows: list[Row] = []
    for district, d in tally["districts"].items():
        selected = set(d["selected"])
        rows += [{"district": district, "district_budget": d["budget"],
                  "currency": tally["currency"], "rank": rank, "project_id": p,
                  "title": projects[p]["title"], "cost": projects[p]["cost"],
                  "votes": d["votes"][p], "selected": p in selected}
                 for rank, p in enumerate(d["ranking"], start=1)]
    return (["district", "district_budget", "currency", "rank", "project_id", "title", "cost",
             "votes", "selected"], rows)


def as_json(poll_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """The JSON export: what the result is about, then the same rows as the CSV."""
    columns, rows = flatten(result)
    tally = result["tally"]
    return {"format": EXPORT_FORMAT, "poll_id": poll_id, "method": tally["method"],
            "question": result["rules"]["question"], "ballots": tally["ballots"],
            "outcome": tally["outcome"], "winners": _winners(tally),
            "rules_hash": result["rules_hash"], "record_root": result["record"]["root"],
            "computed_at": result["computed_at"], "columns": columns, "rows": rows}


def _winners(tally: dict[str, Any]) -> list[str]:
    if tally["method"] == "yes_no_abstain":
        won = {"adopted": "yes", "rejected": "no"}.get(tally["outcome"])
        return [won] if won else []
    return list(tally["winners"])


def as_csv(result: dict[str, Any]) -> str:
    """RFC 4180: a header row, then one row per option; CRLF line ends; booleans as
    ``true``/``false``, a missing value empty."""
    columns, rows = flatten(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell(c) for c in columns])
    writer.writerows([_cell(row[c]) for c in columns] for row in rows)
    return out.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def filename(poll_id: str, extension: str) -> str:
    """A download name from the poll id, reduced to characters safe in any header."""
    return f"poll-{re.sub(r'[^A-Za-z0-9_-]', '_', poll_id)}-results.{extension}"


def disposition(poll_id: str, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename(poll_id, extension)}"'}

