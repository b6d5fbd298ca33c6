"""The agent desk's pages (issue 13): register someone who has neither an e-mail address
nor a phone and print their card (the one-time desk code and its QR code); a new card;
a poll's desk: whether a person has voted (never what), their assisted vote, marking
them as voting on paper, and paper ballots entered in batches, each by its serial.

Every action is the API's (``/v1/desk``), which takes it from agents and admins only;
the pages ask ``/v1/me`` first only to greet anyone else with why, not to decide.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from urne.gateway.web import forms
from urne.gateway.web.api import ApiProblem
from urne.gateway.web.i18n import N_
from urne.gateway.web.page import Page, form_of

router = APIRouter(include_in_schema=False)

ROWS = {"yes_no_abstain": 10}  # lines of an empty batch form, by method
ROWS_OTHER = 3
ROWS_MAX = 100  # the API takes 500 a batch; a page of 100 lines is already long
MORE_ROWS = 10  # lines added by "more lines"
OPEN_POLLS_FROM = 20  # newest published consultations whose open polls the desk lists
# The API's paper serial (docs/api.md, "Paper ballots"), checked here only to say which
# line is wrong: the API refuses a batch with one bad serial whole, without saying which.
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

DISTRICT = N_("A district is a name of letters, digits, '.', '_', ':' or '-', starting "
              "with a letter or a digit.")  # the API's refusal of one, said
CHANNELS = {"online": N_("online"), "desk": N_("at a desk (assisted vote)"),
            "paper": N_("on paper")}

# What the desk's refusals mean to an agent (msgids; Page.say falls back on KNOWN, then
# the API's detail).
DESK_KNOWN = {
    "forbidden": N_("The agent desk is for agents and admins. Ask an admin for the "
                    "agent role."),
    "person_not_found": N_("No one has this person id."),
    "voted_on_paper": N_("This person is marked as voting on paper: no other ballot of "
                         "theirs is taken in this poll."),
    "already_voted": N_("This person has already voted: a paper cannot replace their "
                        "ballot. Help them vote at the desk instead: that ballot replaces "
                        "the previous one."),
    "paper_serial_twice": N_("The same serial is on two lines of this batch: nothing was "
                             "entered."),
    "idempotency_key_reused": N_("This paper was already entered with another choice: it "
                                 "counts as first entered."),
    "paper_census_poll": N_("Paper ballots are taken only in polls open to all, not in a "
                            "census poll."),
    "desk_card_used": N_("This person has already signed in with a card: only an admin "
                         "can give them a new one."),
    "not_registered_at_desk": N_("This person was not registered at a desk: they sign in "
                                 "by e-mail or SMS, and no agent gives them a card."),
    "census_claim_required": N_("This poll is for its census: this person must claim "
                                "their census entry first."),
    "ballot_limit_reached": N_("This person has cast as many ballots as a poll allows."),
    "not_eligible": N_("This person is not on the electorate of this poll."),
}


def _refused(page: Page, exc: ApiProblem, back: str = "/desk") -> HTMLResponse:
    """A refusal that ends the page: signed out, not an agent, no such poll."""
    if exc.code in ("invalid_token", "access_token_required"):
        return page.render("sign_in.html", status=401, next="/desk",
                           message=page._("Please sign in again."))
    return page.render("problem.html", status=exc.status, code=exc.code,
                       message=page.say(exc, DESK_KNOWN),
                       back="/" if exc.code == "forbidden" else back)


async def _agent(page: Page, here: str) -> Response | None:
    """Anyone but a signed-in agent or admin is told why (the API refuses them anyway)."""
    if page.api.token is None:
        return page.render("sign_in.html", status=401, next=here,
                           message=page._("Sign in with your agent account."))
    try:
        me = await page.api.get("/me")
    except ApiProblem as exc:
        return _refused(page, exc)
    if me["role"] not in ("agent", "admin"):
        return page.render("problem.html", status=403, code="forbidden",
                           message=page._(DESK_KNOWN["forbidden"]), back="/")
    return None


def _no_store(response: Response) -> Response:
    """A page with a one-time code stays out of every cache (and the browser's history
    of pages kept for going back)."""
    response.headers["Cache-Control"] = "no-store"
    return response


async def _open_polls(page: Page) -> list[dict[str, Any]]:
    """The open polls of the newest published consultations, with their consultation."""
    listing = await page.api.get(f"/consultations?limit={OPEN_POLLS_FROM}")
    found = []
    for summary in listing["items"]:
        if summary["status"] != "published":
            continue
        consultation = await page.api.get(f"/consultations/{quote(summary['id'], safe='')}")
        found += [{"consultation": consultation["title"], "poll": p}
                  for p in consultation["polls"] if p["status"] == "open"]
    return found


async def _home(page: Page, status: int = 200, message: str | None = None,
                fields: dict[str, list[str]] | None = None) -> Response:
    try:
        polls = await _open_polls(page)
    except ApiProblem as exc:
        return _refused(page, exc, back="/")
    return page.render("desk/home.html", status=status, polls=polls, message=message,
                       fields=fields or {}, idempotency_key=uuid.uuid4().hex)


@router.get("/desk", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    page = Page(request)
    denied = await _agent(page, "/desk")
    return denied or await _home(page)


# -- Cards ----------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
_LENGTH = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,4})?$")
# What a QR code drawn by segno holds, and nothing else: no script, no link, no style.
_SVG_PARTS: dict[str, dict[str, re.Pattern[str]]] = {
    "path": {"d": re.compile(r"^[MmHhVvLlZz0-9.,\s-]{1,100000}$"),
             "transform": re.compile(r"^(scale|translate)\([0-9.,\s-]{1,40}\)$"),
             "stroke": re.compile(r"^(#[0-9a-fA-F]{3,8}|none)$"),
             "fill": re.compile(r"^(#[0-9a-fA-F]{3,8}|none)$"),
             "stroke-width": _LENGTH,
             "class": re.compile(r"^[a-z-]{1,40}$")},
    "rect": {name: _LENGTH for name in ("x", "y", "width", "height")} | {
             "fill": re.compile(r"^(#[0-9a-fA-F]{3,8}|none)$")},
}


def qr_markup(svg: str, label: str) -> Markup | None:
    """The API's QR code (``qr_svg``, drawn by segno) redrawn from what it may hold: an
    ``<svg>`` of paths and rectangles with the attributes a QR code needs, checked one
    by one, as an image with an accessible name; None for anything else (it is not put
    in the page)."""
    text = svg.strip()
    if not text.startswith(("<svg", "<?xml")) or "<!" in text or "<script" in text.lower():
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    width, height = root.get("width", ""), root.get("height", "")
    if root.tag != f"{SVG}svg" or not (_LENGTH.match(width) and _LENGTH.match(height)) or \
            set(root.attrib) - {"width", "height", "class", "viewBox"}:
        return None
    drawn = []
    for part in root:
        name = part.tag.removeprefix(SVG)
        if name in ("title", "desc"):
            continue  # in English: the page gives its own name
        allowed = _SVG_PARTS.get(name)
        if allowed is None or len(part) or (part.text or "").strip() or any(
                a not in allowed or not allowed[a].match(v) for a, v in part.attrib.items()):
            return None
        attributes = "".join(f' {a}="{escape(v)}"' for a, v in part.attrib.items())
        drawn.append(f"<{name}{attributes}/>")
    if not drawn:
        return None
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="desk-qr" '
                  f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
                  f'role="img" aria-label="{escape(label)}">{"".join(drawn)}</svg>')


def _day(page: Page, when: str) -> Markup:
    """A day, in the page's language, as a ``<time>``."""
    try:
        day = format_date(datetime.fromisoformat(when), format="long", locale=page.lang)
    except ValueError:
        day = when
    return Markup('<time datetime="{}">{}</time>').format(when, day)


async def _card(page: Page, card: dict[str, Any], registered: bool) -> Response:
    try:
        polls = await _open_polls(page)
    except ApiProblem:
        polls = []  # the card matters more than the list: the poll id field remains
    qr = qr_markup(card["qr_svg"], page._("QR code of the sign-in code"))
    return _no_store(page.render("desk/card.html", status=201, card=card, qr=qr,
                                 registered=registered, polls=polls,
                                 expires=_day(page, card["expires_at"])))


@router.post("/desk/people", response_class=HTMLResponse)
async def register(request: Request) -> Response:
    """Register a person (their district if the agent checked it), then their card. The
    form's key makes a resent form one person (with a new card, voiding the first)."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    district = (forms.one(fields, "district") or "").strip()
    key = forms.one(fields, "idempotency_key") or uuid.uuid4().hex
    try:
        card = await page.api.post("/desk/people", {"district": district} if district else {},
                                   headers={"Idempotency-Key": key})
    except ApiProblem as exc:
        if exc.code == "invalid_request" and district:
            return await _home(page, 422, page._(DISTRICT), fields)
        return _refused(page, exc)
    return await _card(page, card, registered=True)


@router.post("/desk/cards", response_class=HTMLResponse)
async def new_card(request: Request) -> Response:
    """A new card for someone registered at a desk: their previous code stops working."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    person = (forms.one(fields, "person") or "").strip()
    try:
        card = await page.api.post(f"/desk/people/{quote(person, safe='')}/codes")
    except ApiProblem as exc:
        if exc.code in ("forbidden", "invalid_token", "access_token_required"):
            return _refused(page, exc)
        # No id, or not one (the API's 404 or 422 for the path): no one has it.
        code = exc.code if exc.code in DESK_KNOWN else "person_not_found"
        return await _home(page, exc.status, page.say_code(code, exc.detail, DESK_KNOWN), fields)
    return await _card(page, card, registered=False)


# -- A poll's desk --------------------------------------------------------------------

@router.get("/desk/polls")
async def find_poll(request: Request, poll: str = "", person: str = "") -> Response:
    """The poll chosen by its id (a form's GET), at its desk page."""
    page = Page(request)
    if not poll.strip():
        return page.redirect("/desk")
    query = f"?{urlencode({'person': person.strip()})}" if person.strip() else ""
    return page.redirect(f"/desk/polls/{quote(poll.strip(), safe='')}{query}")


def _rows_wanted(rules: dict[str, Any], asked: str | None) -> int:
    default = ROWS.get(rules["method"], ROWS_OTHER)
    return max(1, min(ROWS_MAX, int(asked))) if asked and asked.isdigit() else default


def _blank_rows(count: int) -> list[dict[str, Any]]:
    return [{"index": i, "serial": "", "fields": {}, "error": None} for i in range(count)]


async def _desk(page: Page, poll: dict[str, Any], person: str, *, status: int = 200,
                rows: list[dict[str, Any]] | None = None,
                standing: dict[str, Any] | None = None, **context: Any) -> Response:
    """A poll's desk page: the person looked up (if any), and the forms."""
    person_problem = None
    if person and standing is None:
        try:
            standing = await page.api.get(
                f"/desk/polls/{quote(poll['id'], safe='')}/people/{quote(person, safe='')}")
        except ApiProblem as exc:
            if exc.code in ("forbidden", "invalid_token", "access_token_required"):
                return _refused(page, exc, back="/desk")
            if exc.code == "poll_not_found":  # it exists: it has not opened
                person_problem = page._("This poll's sign-in list starts when it opens.")
            else:  # 404 person_not_found, or 422 for what is no person id
                code = "person_not_found" if exc.status == 422 else exc.code
                person_problem = page.say_code(code, exc.detail, DESK_KNOWN)
    context.setdefault("vote_key", uuid.uuid4().hex)
    context.setdefault("chosen", {})
    count = len(rows) if rows else _rows_wanted(poll["rules"], page.request.query_params.get(
        "rows"))
    for row in rows or []:
        row["message"] = page._(row["error"]) if row["error"] else None
    more = min(ROWS_MAX, count + MORE_ROWS)
    more_href = f"/desk/polls/{quote(poll['id'], safe='')}?" + urlencode(
        {"rows": more, **({"person": person} if person else {})}) if more > count else None
    return page.render("desk/poll.html", status=status, poll=poll, rules=poll["rules"],
                       person=person, standing=standing, person_problem=person_problem,
                       channels=[page._(CHANNELS.get(c, c)) for c in
                                 (standing or {}).get("channels", [])],
                       rows=rows or _blank_rows(count), more_href=more_href, **context)


async def _poll(page: Page, poll_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await page.api.get(f"/polls/{quote(poll_id, safe='')}")
    return found


@router.get("/desk/polls/{poll_id}", response_class=HTMLResponse)
async def poll_desk(request: Request, poll_id: str, person: str = "") -> Response:
    page = Page(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    denied = await _agent(page, here)
    if denied:
        return denied
    try:
        poll = await _poll(page, poll_id)
    except ApiProblem as exc:
        return _refused(page, exc)
    return await _desk(page, poll, person.strip())


def _checked_who(fields: dict[str, list[str]]) -> bool:
    return forms.one(fields, "identity_checked") == "yes"


@router.post("/desk/polls/{poll_id}/people/{person_id}/ballot", response_class=HTMLResponse)
async def assisted_vote(request: Request, poll_id: str, person_id: str) -> Response:
    """The person's own ballot, cast with the agent's help: a desk voting token for them,
    then the ballot with it; the form's idempotency key makes a resent form one ballot."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    try:
        poll = await _poll(page, poll_id)
    except ApiProblem as exc:
        return _refused(page, exc)
    key = forms.one(fields, "idempotency_key") or uuid.uuid4().hex
    back: dict[str, Any] = {"vote_key": key, "chosen": fields}
    if not _checked_who(fields):
        return await _desk(page, poll, person_id, status=422, **back, vote_message=page._(
            "Check who this person is, then tick the box: the ballot is cast in their name."))
    try:
        choice = forms.choice(poll["rules"], fields)
    except forms.FormError as exc:
        return await _desk(page, poll, person_id, status=422, **back,
                           vote_message=page._(str(exc)))
    path = f"/polls/{quote(poll_id, safe='')}"
    try:
        voting = await page.api.post(f"/desk{path}/people/{quote(person_id, safe='')}"
                                     "/voting-token")
        receipt = await page.api.post(f"{path}/ballots", {"choice": choice},
                                      token=voting["voting_token"],
                                      headers={"Idempotency-Key": key})
    except ApiProblem as exc:
        if exc.code in ("forbidden", "invalid_token", "access_token_required"):
            return _refused(page, exc)
        return await _desk(page, poll, person_id, status=exc.status, **back,
                           vote_message=page.say(exc, DESK_KNOWN))
    return page.render("desk/receipt.html", status=201, poll=poll, person=person_id,
                       receipt=receipt, tracker_address=str(request.base_url).rstrip("/")
                       + f"/polls/{quote(poll_id, safe='')}/tracker")


@router.post("/desk/polls/{poll_id}/people/{person_id}/paper", response_class=HTMLResponse)
async def mark_paper(request: Request, poll_id: str, person_id: str) -> Response:
    """Mark the person as voting on paper, before handing them one."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    try:
        poll = await _poll(page, poll_id)
    except ApiProblem as exc:
        return _refused(page, exc)
    if not _checked_who(fields):
        return await _desk(page, poll, person_id, status=422, paper_message=page._(
            "Check who this person is, then tick the box: no other ballot of theirs will "
            "be taken."))
    try:
        standing = await page.api.post(f"/desk/polls/{quote(poll_id, safe='')}/people/"
                                       f"{quote(person_id, safe='')}/paper")
    except ApiProblem as exc:
        if exc.code in ("forbidden", "invalid_token", "access_token_required"):
            return _refused(page, exc)
        return await _desk(page, poll, person_id, status=exc.status,
                           paper_message=page.say(exc, DESK_KNOWN))
    # The answer, not the sign-in list, which is seconds behind.
    return await _desk(page, poll, person_id, status=201, standing=standing,
                       paper_marked=True)


def _paper_rows(rules: dict[str, Any], fields: dict[str, list[str]]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batch form's lines (each ``p<i>.<field>``, its fields as the ballot form's),
    with what is wrong with each, and the ballots of the lines filled in."""
    count = _rows_wanted(rules, forms.one(fields, "rows"))
    rows, ballots = [], []
    for i in range(count):
        prefix = f"p{i}."
        # A select left at its blank choice is a field not given (forms.choice says so).
        mine = {name[len(prefix):]: [v for v in values if v.strip()]
                for name, values in fields.items() if name.startswith(prefix)}
        mine = {name: values for name, values in mine.items() if values}
        serial = (forms.one(mine, "serial") or "").strip()
        row: dict[str, Any] = {"index": i, "serial": serial, "fields": mine, "error": None}
        rows.append(row)
        filled = any(name != "serial" for name in mine)
        if not serial and not filled:
            continue  # a blank line
        if not serial:
            row["error"] = N_("Give this paper's serial.")
        elif not SERIAL.match(serial):
            row["error"] = N_("A serial is 1 to 64 letters, digits, '.', '_' or '-', "
                              "starting with a letter or a digit.")
        else:
            try:
                ballots.append({"serial": serial, "choice": forms.choice(rules, mine)})
            except forms.FormError as exc:
                row["error"] = str(exc)
    return rows, ballots


@router.post("/desk/polls/{poll_id}/paper-ballots", response_class=HTMLResponse)
async def paper_ballots(request: Request, poll_id: str) -> Response:
    """A batch of paper ballots, one line each: sent only if every filled line makes a
    ballot; then the API's result for each, by serial."""
    page = Page(request)
    fields = await form_of(request, page)
    if isinstance(fields, Response):
        return fields
    try:
        poll = await _poll(page, poll_id)
    except ApiProblem as exc:
        return _refused(page, exc)
    person = (forms.one(fields, "person") or "").strip()
    district = (forms.one(fields, "district") or "").strip()
    rows, ballots = _paper_rows(poll["rules"], fields)
    kept: dict[str, Any] = {"district": district}
    if any(r["error"] for r in rows):
        return await _desk(page, poll, person, status=422, rows=rows, **kept,
                           batch_message=page._("Nothing was entered: correct the lines "
                                                "marked."))
    if not ballots:
        return await _desk(page, poll, person, status=422, rows=rows, **kept,
                           batch_message=page._("Fill in at least one line: a paper's "
                                                "serial and its choice."))
    body: dict[str, Any] = {"ballots": ballots, **({"district": district} if district else {})}
    try:
        entered = await page.api.post(f"/desk/polls/{quote(poll_id, safe='')}/paper-ballots",
                                      body)
    except ApiProblem as exc:
        if exc.code in ("forbidden", "invalid_token", "access_token_required"):
            return _refused(page, exc)
        if exc.code == "paper_serial_twice":
            upper = [r["serial"].upper() for r in rows]
            for row in rows:
                if row["serial"] and upper.count(row["serial"].upper()) > 1:
                    row["error"] = N_("This serial is on another line of this batch too.")
        said = page._(DISTRICT) if exc.code == "invalid_request" and district else \
            page.say(exc, DESK_KNOWN)  # the serials and choices were checked above
        return await _desk(page, poll, person, status=exc.status, rows=rows, **kept,
                           batch_message=said)
    results = [{"serial": r["serial"], "accepted": r["status"] == 201,
                "tracker": (r.get("receipt") or {}).get("tracker"),
                "message": None if r["status"] == 201 else
                page.say_code(r.get("code"), r.get("detail"), DESK_KNOWN),
                "detail": r.get("detail")}  # the API's own words: which rule, say
               for r in entered["results"]]
    return await _desk(page, poll, person, rows=_blank_rows(len(rows)), results=results,
                       accepted=entered["accepted"], **kept)
