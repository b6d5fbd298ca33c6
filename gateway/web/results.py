"""A poll's published result, and how to check it (issue 13): the result as a table and
an SVG chart (per district for a budget), then what an auditor needs: the signed result,
the frozen rules, the public record to download, the keys, the command that verifies
them all, and the check of one's own tracker.

The rows are the API's export (``/v1/polls/{id}/results.json``: the same flat rows as
the CSV), so the page shows exactly what can be downloaded."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from urne.audit.bundle import HEADS, KEYS, RECORD, RECORD_HEADERS, RESULT, RULES
from urne.gateway.web.api import ApiProblem
from urne.gateway.web.charts import Bar, bars
from urne.gateway.web.i18n import N_
from urne.gateway.web.page import Page

router = APIRouter(include_in_schema=False)

# Why there is no result to show yet (the API's codes; its detail otherwise).
WAITING = {
    "result_not_published": N_("The result is not published yet."),
    "result_embargoed": N_("The result is counted but not released yet."),
    "results_hidden": N_("This poll's results are not shown."),
    "result_withheld": N_("The result is withheld: its counts are being checked."),
}
# The export's columns, as a person reads them (a grade's column is "grade:<grade>").
COLUMNS = {
    "option_id": N_("Answer"), "votes": N_("Votes"), "winner": N_("Winner"),
    "rank": N_("Rank"), "title": N_("Option"), "approvals": N_("Approvals"),
    "points": N_("Points"), "first_preferences": N_("First preferences"),
    "majority_grade": N_("Majority grade"), "tied": N_("Tied"),
    "district": N_("District"), "district_budget": N_("Budget"), "currency": N_("Currency"),
    "cost": N_("Cost"), "selected": N_("Selected"),
}


def columns(export: dict[str, Any], _: Any) -> list[tuple[str, str]]:
    """(key, heading) of the columns shown: ids left out where a title says it."""
    keys = export["columns"]
    hidden = {"option_id", "project_id"} if "title" in keys else {"project_id"}
    return [(k, _(COLUMNS[k]) if k in COLUMNS else
             k.removeprefix("grade:") if k.startswith("grade:") else k)
            for k in keys if k not in hidden]


# The column a method's chart draws, and the word for a marked bar.
SCORE = {"yes_no_abstain": "votes", "approval": "approvals", "ranking": "points",
         "budget": "votes"}


def charts(export: dict[str, Any], _: Any) -> list[tuple[str | None, Markup]]:
    """(district or None, chart) for the export's rows; none for majority judgment,
    whose table says it better than bars would."""
    method, rows = export["method"], export["rows"]
    score = SCORE.get(method)
    if score is None:
        return []
    if method == "budget":
        districts: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            districts.setdefault(row["district"], []).append(row)
        return [(None if d == "*" else d, bars(
            export["question"] + (f" ({d})" if d != "*" else ""),
            [Bar(r["title"], r["votes"], r["selected"], _("selected") if r["selected"] else "")
             for r in district])) for d, district in districts.items()]
    answers = {"yes": _("Yes"), "no": _("No"), "abstain": _("Abstain")}
    return [(None, bars(export["question"], [
        Bar(r.get("title") or answers.get(r["option_id"], r["option_id"]), r[score],
            bool(r.get("winner")), _("winner") if r.get("winner") else "")
        for r in rows]))]


@router.get("/polls/{poll_id}/results", response_class=HTMLResponse)
async def result(request: Request, poll_id: str) -> Response:
    page = Page(request)
    path = f"/polls/{quote(poll_id, safe='')}"
    try:
        poll = await page.api.get(path)
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    try:
        export = await page.api.get(f"{path}/results.json")
    except ApiProblem as exc:
        if exc.code not in WAITING:
            return page.problem(exc, back=f"/polls/{poll_id}")
        return page.render("results/waiting.html", status=exc.status, poll=poll,
                           message=page._(WAITING[exc.code]))
    base = str(request.base_url).rstrip("/")
    return page.render("results/result.html", poll=poll, export=export,
                       charts=charts(export, page._), columns=columns(export, page._),
                       base=base,
                       outcome={"adopted": page._("Adopted"),
                                "rejected": page._("Rejected")}.get(export["outcome"]))


@router.get("/polls/{poll_id}/audit-bundle.zip")
async def audit_bundle(request: Request, poll_id: str) -> Response:
    """The poll's public documents as ``urne audit fetch`` saves them (urne/audit/
    bundle.py: the routes' bytes as served), zipped: unzipped, ``urne audit verify
    --bundle`` checks it offline. Built in memory: for a very large record, ``urne audit
    fetch`` streams to disk instead."""
    page = Page(request)
    audit = f"/audit/polls/{quote(poll_id, safe='')}"
    try:
        documents = {KEYS: (await page.api.raw("GET", "/audit/keys")).content,
                     RULES: (await page.api.raw("GET", f"{audit}/rules")).content,
                     RESULT: (await page.api.raw("GET", f"{audit}/result")).content,
                     HEADS: (await page.api.raw("GET", f"{audit}/heads")).content}
        record = await page.api.raw("GET", f"{audit}/record.ndjson")
    except ApiProblem as exc:
        return page.problem(exc, back=f"/polls/{poll_id}/results")
    documents[RECORD] = record.content
    documents[RECORD_HEADERS] = (json.dumps({
        "poll_id": poll_id, "size": int(record.headers["Urne-Record-Size"]),
        "root": record.headers["Urne-Record-Root"]}) + "\n").encode()
    zipped = io.BytesIO()
    folder = f"urne-audit-{poll_id}"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in documents.items():
            archive.writestr(f"{folder}/{name}", content)
    response = Response(zipped.getvalue(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{folder}.zip"'})
    page.finish(response)
    return response
