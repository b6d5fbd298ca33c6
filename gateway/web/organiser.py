"""The organiser's pages (issue 13): their consultations, a new one, its proposals and
polls (one form for the five voting methods), opening, closing and publishing them, and a
poll's turnout by district and channel.

Every page asks ``/v1`` only, with the person's token: the API decides who may see and do
what (a participant's form is refused there, and the page shows its refusal). Each action
is a CSRF-checked form post answered by a redirect (Post/Redirect/Get); a form the API
refuses comes back with what was typed, the API's status and why.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from urne.gateway.web import forms
from urne.gateway.web.api import ApiProblem
from urne.gateway.web.i18n import N_
from urne.gateway.web.page import Page, form_of, safe_next

router = APIRouter(include_in_schema=False)

METHODS = ("yes_no_abstain", "approval", "ranking", "majority_judgment", "budget")
VISIBILITIES = ("after_close", "embargoed", "live")
POLL_ACTIONS = ("open", "close", "publish")
STAFF = ("organiser", "admin")

# Majority judgment's usual seven grades, best first: the form's default, in the page's
# language (the organiser may write others; they are shown to voters as written).
GRADES = (N_("Excellent"), N_("Very good"), N_("Good"), N_("Fairly good"), N_("Passable"),
          N_("Insufficient"), N_("To reject"))

# What the API's codes mean to an organiser (msgids; its detail is shown otherwise).
REFUSALS = {
    "forbidden": N_("Only organisers and administrators may do this."),
    "not_an_organiser": N_("You are not an organiser of this consultation."),
    "not_an_organiser_of_this_consultation":
        N_("You are not an organiser of this consultation."),
    "consultation_published": N_("This consultation is already published."),
    "consultation_draft": N_("Publish the consultation before opening its polls."),
    "poll_draft": N_("This poll has not opened yet."),
    "poll_open": N_("This poll is already open."),
    "poll_published": N_("This poll's result is already published."),
    "poll_not_embargoed": N_("This poll's result is published by itself once it is "
                             "counted: there is nothing to release."),
    "poll_rules_frozen": N_("This poll has opened: its rules can no longer change."),
    "schedule_in_past": N_("This poll's closing time has passed: it can no longer open."),
    "invalid_request": N_("The API refused these values: check the fields and try again."),
    "proposal_not_found": N_("There is no such proposal in this consultation."),
    "proposals_closed": N_("This consultation takes proposals from its participants during "
                           "its proposals step only."),
}

# What a redirect back says was done (``?done=…``): only these, never the query's text.
DONE = {
    "created": N_("The consultation is created, in draft: only its organisers see it."),
    "published": N_("The consultation is published: everybody sees it, and its polls may "
                    "open."),
    "proposal": N_("The proposal is added and published."),
    "poll": N_("The poll is created, in draft: its rules may change until it opens."),
    "open": N_("The poll is open: ballots are taken."),
    "close": N_("The poll is closed: its result is being counted and signed."),
    "publish": N_("The poll's result is released: it is public once signed."),
}


class PollFormError(ValueError):
    """A poll form that makes no rules: a msgid, and its placeholders' values."""

    def __init__(self, msgid: str, **values: str):
        super().__init__(msgid)
        self.msgid, self.values = msgid, values


def refused(page: Page, exc: ApiProblem, back: str | None) -> Response:
    """The API's refusal as a page: sign in (again), or the problem and a way back."""
    if exc.status == 401:
        return must_sign_in(page, back)
    return page.render("problem.html", status=exc.status, code=exc.code,
                       message=page.say(exc, REFUSALS), back=back)


def must_sign_in(page: Page, then: str | None = None) -> Response:
    """The sign-in form, leading back to this page (to ``then`` after a form post)."""
    here = page.request.url.path if page.request.method == "GET" else then or "/organiser"
    return page.render("sign_in.html", status=401, next=safe_next(here),
                       message=page._("Sign in as an organiser to reach these pages."))


def when(value: str | None, zone: str) -> str:
    """An API time (RFC 3339) in the consultation's time zone, to the minute."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value).astimezone(ZoneInfo(zone))
    except (ValueError, KeyError):
        return value
    return f"{at:%Y-%m-%d %H:%M} ({zone})"


# --- the poll form, as the API's rules (pure) ----------------------------------------------

def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def slugs(titles: list[str]) -> list[str]:
    """An option id for each title: its letters and digits, or ``o<n>``; unique."""
    made: list[str] = []
    for n, title in enumerate(titles, 1):
        plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
        slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40].strip("-")
        slug = slug or f"o{n}"
        unique, k = slug, 2
        while unique in made:
            unique, k = f"{slug}-{k}", k + 1
        made.append(unique)
    return made


def whole(text: str) -> int | None:
    """A whole number as people write it ("20 000", "20000"), or None."""
    digits = re.sub(r"[\s\u00a0\u202f_]", "", text)
    return int(digits) if re.fullmatch(r"[0-9]{1,16}", digits) else None


def poll_rules(form: dict[str, str]) -> dict[str, Any]:
    """The rules the poll form describes, for the API to check; ``PollFormError`` when a
    field does not even parse (the API says what else is wrong)."""
    method, question = form["method"], form["question"].strip()
    if method not in METHODS:
        raise PollFormError(N_("Choose a voting method."))
    if not question:
        raise PollFormError(N_("Write the question."))
    rules: dict[str, Any] = {"method": method, "question": question}
    if method == "yes_no_abstain":
        return rules
    if method == "budget":
        budget = whole(form["budget"])
        if budget is None:
            raise PollFormError(N_("The budget is a whole number."))
        projects = []
        for line in lines(form["projects"]):
            title, _, cost = line.rpartition(";")
            amount = whole(cost)
            if not title.strip() or amount is None:
                raise PollFormError(N_("Write each project as: title; cost (a whole "
                                       "number). This line is not: %(line)s"), line=line)
            projects.append((title.strip(), amount))
        if not projects:
            raise PollFormError(N_("List the projects, one per line, as: title; cost."))
        ids = slugs([title for title, _ in projects])
        return {**rules, "budget": budget,
                "projects": [{"id": i, "title": t, "cost": c}
                             for i, (t, c) in zip(ids, projects, strict=True)]}
    titles = lines(form["options"])
    if not titles:
        raise PollFormError(N_("List the options, one per line."))
    rules["options"] = [{"id": i, "title": t}
                        for i, t in zip(slugs(titles), titles, strict=True)]
    if method == "majority_judgment":
        return {**rules, "grades": lines(form["grades"])}
    limit = whole(form["max_choices"]) if form["max_choices"].strip() else len(titles)
    if limit is None:
        raise PollFormError(N_("The number of choices is a whole number."))
    return {**rules, ("max_choices" if method == "approval" else "max_ranks"): limit}


# --- the pages ------------------------------------------------------------------------------

def _path(kind: str, ident: str) -> str:
    return f"/{kind}/{quote(ident, safe='')}"


def _text(fields: dict[str, list[str]], *names: str) -> dict[str, str]:
    return {name: forms.one(fields, name) or "" for name in names}


@router.get("/organiser", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    page = Page(request)
    return await _index(page, {"title": "", "description": ""}, None, 200)


async def _index(page: Page, form: dict[str, str], message: str | None,
                 status: int) -> Response:
    """The consultations the person may act on (those whose organisers the API shows
    them), and the form for a new one."""
    if page.api.token is None:
        return must_sign_in(page)
    try:
        me = await page.api.get("/me")
        if me["role"] not in STAFF:  # the API's word for the role; it refuses the forms
            raise ApiProblem(403, "forbidden", "this page is for organisers and admins")
        listing = await page.api.get("/consultations?limit=100")
        mine = []
        for item in listing["items"]:
            # A draft is listed to its organisers only; whose a published one is, the
            # listing does not say: its own page does (its organisers, to them only).
            if item["status"] == "published" and me["role"] != "admin":
                found = await page.api.get(_path("consultations", item["id"]))
                if found["organisers"] is None:
                    continue
            mine.append(item)
    except ApiProblem as exc:
        return refused(page, exc, back="/")
    return page.render("organiser/index.html", status=status, consultations=mine,
                       form=form, message=message, form_key=_form_key(),
                       done=page._(DONE[d]) if (d := page.request.query_params.get("done"))
                       in DONE else None)


def _form_key() -> str:
    """A creation form's Idempotency-Key, new with every page: the form sent twice (a
    double click, a resend after a lost answer) creates once; the page shown again after
    a refusal has a new one, for the corrected form."""
    return uuid.uuid4().hex


def _key_of(fields: dict[str, list[str]]) -> dict[str, str]:
    key = forms.one(fields, "idempotency_key")
    return {"Idempotency-Key": key} if key else {}


@router.post("/organiser/consultations", response_class=HTMLResponse)
async def create_consultation(request: Request) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    form = _text(fields, "title", "description")
    try:
        made = await page.api.post("/consultations", {"title": form["title"].strip(),
                                                      "description": form["description"]},
                                   headers=_key_of(fields))
    except ApiProblem as exc:
        if exc.status in (401, 403):
            return refused(page, exc, back="/organiser")
        return await _index(page, form, page.say(exc, REFUSALS), exc.status)
    return page.redirect(_path("organiser/consultations", made["id"]) + "?done=created")


async def _consultation_page(page: Page, consultation_id: str, status: int = 200,
                             proposal: dict[str, str] | None = None,
                             poll: dict[str, str] | None = None,
                             message: str | None = None, where: str | None = None
                             ) -> Response:
    if page.api.token is None:
        return must_sign_in(page)
    try:
        found = await page.api.get(_path("consultations", consultation_id))
    except ApiProblem as exc:
        return refused(page, exc, back="/organiser")
    if found["organisers"] is None:  # the API shows its organisers to them only
        return page.render("problem.html", status=status if message else 403,
                           code="not_an_organiser", back="/organiser",
                           message=message or page._(REFUSALS["not_an_organiser"]))
    done = page.request.query_params.get("done")
    return page.render(
        "organiser/consultation.html", status=status, consultation=found,
        proposal=proposal or {"title": "", "body": ""},
        poll=poll or {"method": "yes_no_abstain", "question": "", "options": "",
                      "grades": "\n".join(page._(g) for g in GRADES), "max_choices": "",
                      "budget": "", "projects": "", "results_visibility": "after_close",
                      "proposal_id": ""},
        methods=METHODS, visibilities=VISIBILITIES, message=message, where=where,
        form_key=_form_key(),
        done=page._(DONE[done]) if done in DONE else None,
        when=lambda value: when(value, found["time_zone"]))


@router.get("/organiser/consultations/{consultation_id}", response_class=HTMLResponse)
async def consultation(request: Request, consultation_id: str) -> Response:
    return await _consultation_page(Page(request), consultation_id)


@router.post("/organiser/consultations/{consultation_id}/publish",
             response_class=HTMLResponse)
async def publish_consultation(request: Request, consultation_id: str) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    here = _path("organiser/consultations", consultation_id)
    try:
        await page.api.post(_path("consultations", consultation_id) + "/publish")
    except ApiProblem as exc:
        return refused(page, exc, back=here)
    return page.redirect(here + "?done=published")


@router.post("/organiser/consultations/{consultation_id}/proposals",
             response_class=HTMLResponse)
async def add_proposal(request: Request, consultation_id: str) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    form = _text(fields, "title", "body")
    here = _path("organiser/consultations", consultation_id)
    try:
        await page.api.post(_path("consultations", consultation_id) + "/proposals",
                            {"title": form["title"].strip(), "body": form["body"]},
                            headers=_key_of(fields))
    except ApiProblem as exc:
        if exc.status in (401, 403, 404):
            return refused(page, exc, back=here)
        return await _consultation_page(page, consultation_id, exc.status, proposal=form,
                                        message=page.say(exc, REFUSALS), where="proposal")
    return page.redirect(here + "?done=proposal#proposals")


@router.post("/organiser/consultations/{consultation_id}/polls",
             response_class=HTMLResponse)
async def create_poll(request: Request, consultation_id: str) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    form = _text(fields, "method", "question", "options", "grades", "max_choices", "budget",
                 "projects", "results_visibility", "proposal_id")
    try:
        rules = poll_rules(form)
    except PollFormError as exc:
        return await _consultation_page(page, consultation_id, 422, poll=form,
                                        message=page._(exc.msgid) % exc.values
                                        if exc.values else page._(exc.msgid),
                                        where="poll")
    body: dict[str, Any] = {"rules": rules, "results_visibility": form["results_visibility"]}
    if form["proposal_id"]:
        body["proposal_id"] = form["proposal_id"]
    try:
        made = await page.api.post(_path("consultations", consultation_id) + "/polls", body,
                                   headers=_key_of(fields))
    except ApiProblem as exc:
        if exc.status in (401, 403):
            return refused(page, exc, back=_path("organiser/consultations", consultation_id))
        return await _consultation_page(page, consultation_id, exc.status, poll=form,
                                        message=page.say(exc, REFUSALS), where="poll")
    return page.redirect(_path("organiser/polls", made["id"]) + "?done=poll")


@router.get("/organiser/polls/{poll_id}", response_class=HTMLResponse)
async def poll(request: Request, poll_id: str) -> Response:
    """The poll, its rules, its turnout (which the API shows its organisers only) and
    what may be done with it now."""
    page = Page(request)
    if page.api.token is None:
        return must_sign_in(page)
    try:
        found = await page.api.get(_path("polls", poll_id))
        turnout = await page.api.get(_path("polls", poll_id) + "/turnout")
        consultation = await page.api.get(_path("consultations", found["consultation_id"]))
    except ApiProblem as exc:
        return refused(page, exc, back="/organiser")
    channels = sorted(turnout["channels"])
    done = page.request.query_params.get("done")
    return page.render("organiser/poll.html", poll=found, rules=found["rules"],
                       consultation=consultation, turnout=turnout, channels=channels,
                       done=page._(DONE[done]) if done in DONE else None,
                       when=lambda value: when(value, consultation["time_zone"]))


@router.post("/organiser/polls/{poll_id}/{action}", response_class=HTMLResponse)
async def act_on_poll(request: Request, poll_id: str, action: str) -> Response:
    """Open, close or release a poll's result; then back where the button was."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    back = safe_next(forms.one(fields, "next") or _path("organiser/polls", poll_id))
    if action not in POLL_ACTIONS:
        return page.render("problem.html", status=404, code="not_found",
                           message=page._("There is no such action."), back=back)
    try:
        await page.api.post(_path("polls", poll_id) + f"/{action}")
    except ApiProblem as exc:
        return refused(page, exc, back=back)
    path, _, anchor = back.partition("#")
    path = path.split("?")[0]
    return page.redirect(f"{path}?done={action}" + (f"#{anchor}" if anchor else ""))
