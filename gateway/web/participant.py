"""The participant's pages (issue 13): the consultations, signing in by code, a poll's
ballot form for every voting method, the receipt, and a tracker checked against the
published record. Forms work without JavaScript; the budget form's running total is a
progressive enhancement (``static/budget.js``)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from urne.gateway.web import forms, session
from urne.gateway.web.api import ApiProblem
from urne.gateway.web.i18n import LANGUAGES
from urne.gateway.web.page import Page, form_of, safe_next

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    page = Page(request)
    try:
        listing = await page.api.get("/consultations")
    except ApiProblem as exc:
        return page.problem(exc)
    return page.render("home.html", consultations=listing["items"])


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str = "/") -> Response:
    return Page(request).render("sign_in.html", next=safe_next(next), message=None)


@router.post("/sign-in", response_class=HTMLResponse)
async def request_code(request: Request) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    email, target = forms.one(fields, "email") or "", safe_next(forms.one(fields, "next"))
    try:
        sent = await page.api.post("/auth/codes", {"email": email})
    except ApiProblem as exc:
        return page.render("sign_in.html", status=exc.status, next=target,
                           message=page.say(exc))
    return page.render("code.html", email=email, next=target,
                       minutes=max(1, sent["expires_in"] // 60), message=None)


@router.post("/sign-in/code", response_class=HTMLResponse)
async def verify_code(request: Request) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    email, target = forms.one(fields, "email") or "", safe_next(forms.one(fields, "next"))
    code = (forms.one(fields, "code") or "").strip()
    try:
        token = await page.api.post("/auth/tokens", {"email": email, "code": code})
    except ApiProblem as exc:
        return page.render("code.html", status=exc.status, email=email, next=target,
                           minutes=None,
                           message=page.say(exc))
    response = page.redirect(target)
    session.sign_in(response, token["access_token"], token["expires_in"], token["role"])
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    response = page.redirect("/")
    session.sign_out(response)
    return response


@router.get("/language/{lang}")
async def language(request: Request, lang: str, next: str = "/") -> Response:
    page = Page(request)
    response = page.redirect(safe_next(next))
    if lang in LANGUAGES:
        session.set_cookie(response, session.LANG, lang, max_age=365 * 86400)
    return response


@router.get("/consultations/{consultation_id}", response_class=HTMLResponse)
async def consultation(request: Request, consultation_id: str) -> Response:
    page = Page(request)
    try:
        found = await page.api.get(f"/consultations/{quote(consultation_id, safe='')}")
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    return page.render("consultation.html", consultation=found, proposal={}, message=None)


@router.post("/consultations/{consultation_id}/proposals", response_class=HTMLResponse)
async def propose(request: Request, consultation_id: str) -> Response:
    """Submit a proposal; the API says whether the consultation's step allows it."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    path = f"/consultations/{quote(consultation_id, safe='')}"
    proposal = {"title": (forms.one(fields, "title") or "").strip(),
                "body": forms.one(fields, "body") or ""}
    try:
        created = await page.api.post(f"{path}/proposals", proposal)
    except ApiProblem as exc:
        try:
            found = await page.api.get(path)
        except ApiProblem as missing:
            return page.problem(missing, back="/")
        return page.render("consultation.html", status=exc.status, consultation=found,
                           proposal=proposal,
                           message=page.say(exc))
    return page.redirect(f"/proposals/{quote(created['id'], safe='')}")


@router.get("/proposals/{proposal_id}", response_class=HTMLResponse)
async def proposal(request: Request, proposal_id: str) -> Response:
    page = Page(request)
    try:
        found = await page.api.get(f"/proposals/{quote(proposal_id, safe='')}")
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    # body_html is the API's rendering of the Markdown, sanitised there (nh3's
    # allow-list), and the pages' Content-Security-Policy runs no inline script anyway.
    return page.render("proposal.html", proposal=found, body=Markup(found["body_html"]))


async def _poll(page: Page, poll_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await page.api.get(f"/polls/{quote(poll_id, safe='')}")
    return found


@router.get("/polls/{poll_id}", response_class=HTMLResponse)
async def poll(request: Request, poll_id: str) -> Response:
    page = Page(request)
    try:
        found = await _poll(page, poll_id)
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    return page.render("poll.html", poll=found, rules=found["rules"], chosen={},
                       idempotency_key=uuid.uuid4().hex, message=None)


@router.post("/polls/{poll_id}/ballot", response_class=HTMLResponse)
async def cast(request: Request, poll_id: str) -> Response:
    """Get a voting token for the person (identity checks eligibility), then cast the
    ballot with it; the form's idempotency key makes a resent form one ballot."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    if page.api.token is None:
        return page.render("sign_in.html", status=401, next=f"/polls/{poll_id}",
                           message=page._("Sign in to vote."))
    try:
        found = await _poll(page, poll_id)
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    key = forms.one(fields, "idempotency_key") or uuid.uuid4().hex
    try:
        choice = forms.choice(found["rules"], fields)
    except forms.FormError as exc:
        return page.render("poll.html", status=422, poll=found, rules=found["rules"],
                           chosen=fields, idempotency_key=key, message=page._(str(exc)))
    path = f"/polls/{quote(poll_id, safe='')}"
    try:
        voting = await page.api.post(f"{path}/voting-token")
        receipt = await page.api.post(f"{path}/ballots", {"choice": choice},
                                      token=voting["voting_token"],
                                      headers={"Idempotency-Key": key})
    except ApiProblem as exc:
        if exc.status in (400, 409, 422):  # the ballot, not the person: back to the form
            return page.render("poll.html", status=exc.status, poll=found,
                               rules=found["rules"], chosen=fields, idempotency_key=key,
                               message=page.say(exc))
        return page.problem(exc, back=f"/polls/{poll_id}")
    return page.render("receipt.html", poll=found, receipt=receipt, status=201)


@router.get("/polls/{poll_id}/tracker", response_class=HTMLResponse)
async def tracker(request: Request, poll_id: str, tracker: str = "") -> Response:
    """Is this tracker in the poll's published record? (its inclusion proof)"""
    page = Page(request)
    try:
        found = await _poll(page, poll_id)
    except ApiProblem as exc:
        return page.problem(exc, back="/")
    proof, missing = None, None
    if tracker:
        try:
            proof = await page.api.get(f"/audit/polls/{quote(poll_id, safe='')}/trackers/"
                                       f"{quote(tracker.strip(), safe='')}")
        except ApiProblem as exc:
            missing = exc
    return page.render("tracker.html", poll=found, tracker=tracker, proof=proof,
                       missing=missing)
