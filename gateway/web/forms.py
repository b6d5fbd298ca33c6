"""What a ballot form sent, as the API's ``choice`` (pure: no I/O).

The forms are plain HTML, one per voting method; the API checks the choice against the
poll's frozen rules (and says why not), so this only reads the fields. A field that
does not parse gives ``FormError`` with a message for the page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from urne.gateway.web.i18n import N_


class FormError(ValueError):
    """The form's fields make no choice (the message is a msgid, translated by the page)."""


def parse(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (the only kind the pages send)."""
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                    max_num_fields=500)


def one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def choice(rules: dict[str, Any], fields: dict[str, list[str]]) -> dict[str, Any]:
    method = rules["method"]
    if method == "yes_no_abstain":
        answer = one(fields, "answer")
        if answer not in ("yes", "no", "abstain"):
            raise FormError(N_("Choose an answer."))
        return {"method": method, "answer": answer}
    if method == "approval":
        return {"method": method, "approved": fields.get("approved", [])}
    if method == "budget":
        return {"method": method, "projects": fields.get("projects", [])}
    if method == "ranking":
        ranks: list[tuple[int, str]] = []
        for option in rules["options"]:
            rank = one(fields, f"rank-{option['id']}") or ""
            if rank:
                if not rank.isdigit():
                    raise FormError(N_("A rank is a number."))
                ranks.append((int(rank), option["id"]))
        if len({r for r, _ in ranks}) != len(ranks):
            raise FormError(N_("Give each rank to one option only."))
        return {"method": method, "ranking": [option for _, option in sorted(ranks)]}
    if method == "majority_judgment":
        grades = {o["id"]: one(fields, f"grade-{o['id']}") for o in rules["options"]}
        if any(g is None for g in grades.values()):
            raise FormError(N_("Grade every option."))
        return {"method": method, "grades": grades}
    raise FormError(N_("This voting method cannot be used here yet."))
