"""The agent desk's pages over the embedded profile, without a browser (TestClient over
HTTPS, so the Secure cookies travel): an admin makes someone an agent through the API;
the agent signs in through the pages, registers a person and gets their card (the code,
its QR code), which signs the person in through the API; the agent helps them vote (the
receipt), sees that they have voted and through which channel (never what), marks
someone else as voting on paper, and enters paper ballots in batches, each line's
refusal shown by its serial; the published result counts the desk's and the papers'
ballots. A participant is refused everything, and every form without its CSRF token is
refused; neither changes anything. The same in Chromium: test_desk_browser.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import ADMIN, OpenPoll, login, open_poll, wait_for, wait_until
from tests.web.pages import field, sign_in
from urne.gateway.routes.desk import qr_svg
from urne.gateway.web.desk import qr_markup

pytestmark = pytest.mark.integration

AGENT = "guichet@example.org"
APPROVAL = {"method": "approval", "question": "Quels aménagements ?", "max_choices": 2,
            "options": [{"id": "bancs", "title": "Des bancs"},
                        {"id": "arbres", "title": "Des arbres"},
                        {"id": "fontaine", "title": "Une fontaine"}]}


def make_agent(web: TestClient, outbox: Path, email: str = AGENT) -> None:
    """An admin gives the role through the API; the agent signs in through the pages."""
    r = web.put("/v1/admin/roles", headers=login(web, outbox, ADMIN),
                json={"email": email, "role": "agent"})
    assert r.status_code == 200 and r.json()["role"] == "agent", r.text
    sign_in(web, outbox, email, "/desk")


def text_of(page: str, element_id: str) -> str:
    """The text of the element with this id (its tags dropped)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(p|code|table)>', page, re.DOTALL)
    assert found, f"no #{element_id} in the page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def register(web: TestClient) -> dict[str, Any]:
    """A person registered at the home page's form; their card as the page shows it."""
    home = web.get("/desk")
    assert home.status_code == 200, home.text
    card = web.post("/desk/people", data={"csrf": field(home.text, "csrf"), "district": "",
                                          "idempotency_key": field(home.text,
                                                                   "idempotency_key")})
    assert card.status_code == 201, card.text
    return {"page": card.text, "code": text_of(card.text, "desk-code"),
            "person_id": text_of(card.text, "person-id"),
            "cache": card.headers.get("cache-control")}


def batch(web: TestClient, poll_id: str, lines: list[tuple[str, str]],
          rows: int = 10) -> Any:
    """A batch of yes/no/abstain papers entered through the poll's desk page."""
    page = web.get(f"/desk/polls/{poll_id}")
    data = {"csrf": field(page.text, "csrf"), "rows": str(rows), "person": ""}
    for i, (serial, answer) in enumerate(lines):
        data |= {f"p{i}.serial": serial, f"p{i}.answer": answer}
    return web.post(f"/desk/polls/{poll_id}/paper-ballots", data=data)


def results_by_serial(page: str) -> dict[str, str]:
    table = re.search(r'<table id="batch-results".*?</table>', page, re.DOTALL)
    assert table, "no result table"
    return {html.unescape(serial): html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for serial, cell in re.findall(
                r'<th scope="row">([^<]+)</th>\s*<td>(.*?)</td>', table.group(0), re.DOTALL)}


def close(web: TestClient, state: OpenPoll) -> dict[str, Any]:
    r = web.post(f"/v1/polls/{state.poll_id}/close", headers=state.organiser)
    assert r.status_code == 200, r.text
    result = wait_for(lambda: web.get(f"/v1/polls/{state.poll_id}/results"), 200)
    assert result.status_code == 200, result.text
    summary: dict[str, Any] = result.json()
    return summary


def actions_of(web: TestClient, outbox: Path, person_id: str) -> list[str]:
    """What the action log holds of this person this month."""
    r = web.get("/v1/admin/actions", headers=login(web, outbox, ADMIN),
                params={"month": datetime.now(UTC).strftime("%Y-%m")})
    assert r.status_code == 200, r.text
    return [a["action"] for a in r.json()["actions"] if a["actor"] == person_id]


def me(web: TestClient) -> str:
    """The person id of whoever is signed in through the pages (their session cookie)."""
    r = web.get("/v1/me", headers={"Authorization": f"Bearer {web.cookies['urne_session']}"})
    assert r.status_code == 200, r.text
    person_id: str = r.json()["person_id"]
    return person_id


def test_an_agent_registers_helps_vote_and_enters_paper_ballots(web: TestClient,
                                                                 outbox: Path) -> None:
    state = open_poll(web, outbox)
    poll = f"/desk/polls/{state.poll_id}"
    assert web.get("/desk").status_code == 401  # signed out: the sign-in form, for /desk
    make_agent(web, outbox)
    home = web.get("/desk")
    assert home.status_code == 200 and "Inscrire une personne" in home.text
    assert f'href="{poll}"' in home.text  # the open poll, listed

    # The card: the code in large type, its QR code an image with a name, shown once.
    card = register(web)
    assert card["cache"] == "no-store"
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", card["code"]), card["code"]
    qr = re.search(r"<svg[^>]*>", card["page"])
    assert qr and 'role="img"' in qr.group(0) and 'aria-label="QR code' in qr.group(0)
    assert "<script" not in card["page"] and "seule fois" in card["page"]
    # It signs the person in, once, as the person registered.
    r = web.post("/v1/auth/tokens", json={"desk_code": card["code"]})
    assert r.status_code == 200 and r.json()["person_id"] == card["person_id"], r.text

    looked = web.get(poll, params={"person": card["person_id"]})
    assert text_of(looked.text, "standing") == "N'a pas encore voté."
    # The assisted vote: the agent first says who they checked, then it is cast.
    sent = {"csrf": field(looked.text, "csrf"), "answer": "yes",
            "idempotency_key": field(looked.text, "idempotency_key")}
    unchecked = web.post(f"{poll}/people/{card['person_id']}/ballot", data=sent)
    assert unchecked.status_code == 422 and 'id="vote-problem"' in unchecked.text
    voted = web.post(f"{poll}/people/{card['person_id']}/ballot",
                     data=sent | {"identity_checked": "yes"})
    assert voted.status_code == 201, voted.text
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4})+", text_of(voted.text, "tracker"))

    # Seconds later the desk page says they have voted, at a desk; never what.
    def standing() -> str:
        return text_of(web.get(poll, params={"person": card["person_id"]}).text, "standing")
    assert wait_until(lambda: standing().startswith("A voté"), timeout=30), standing()
    assert standing() == "A voté. Par : à un guichet (vote assisté)."

    # A card for someone who has signed in with one is an admin's to give.
    again = web.post("/desk/cards", data={"csrf": field(home.text, "csrf"),
                                          "person": card["person_id"]})
    assert again.status_code == 403 and "seul un admin" in again.text

    # Three papers, each by its serial.
    entered = batch(web, state.poll_id, [("B7-1", "yes"), ("B7-2", "no"), ("B7-3", "abstain")])
    assert entered.status_code == 200, entered.text
    assert text_of(entered.text, "batch-summary") == "Bulletins acceptés : 3 sur 3."
    assert [r.split(".")[0] for r in results_by_serial(entered.text).values()] == \
        ["Accepté"] * 3
    # A line without its serial, a serial of the wrong shape: nothing is sent.
    wrong = batch(web, state.poll_id, [("", "yes"), ("B 7", "no"), ("B7-8", "yes")])
    assert wrong.status_code == 422 and 'id="batch-problem"' in wrong.text
    assert text_of(wrong.text, "p0-error").startswith("Ligne 1 : Indiquez le numéro")
    assert text_of(wrong.text, "p1-error").startswith("Ligne 2 : Un numéro")
    assert 'value="B7-8"' in wrong.text  # what was typed stays
    # One serial twice in a batch: the API refuses it whole; both lines are marked.
    twice = batch(web, state.poll_id, [("C-1", "yes"), ("B7-9", "no"), ("c-1", "no")])
    assert twice.status_code == 422, twice.text
    assert "même numéro" in text_of(twice.text, "batch-problem")
    assert "aussi sur une autre ligne" in text_of(twice.text, "p0-error")
    assert "aussi sur une autre ligne" in text_of(twice.text, "p2-error")
    assert 'id="p1-error"' not in twice.text
    # A paper again: the same choice is the same ballot; another choice is refused, on
    # its line. C-1 was not entered above: it is taken now, with its other answer.
    mixed = batch(web, state.poll_id, [("b7-1", "yes"), ("B7-2", "yes"), ("C-1", "no")])
    assert mixed.status_code == 200, mixed.text
    assert text_of(mixed.text, "batch-summary") == "Bulletins acceptés : 2 sur 3."
    lines = results_by_serial(mixed.text)
    assert lines["b7-1"].startswith("Accepté") and lines["C-1"].startswith("Accepté")
    assert lines["B7-2"].startswith("Refusé : Ce bulletin a déjà été saisi avec un autre "
                                    "choix : il compte tel que saisi la première fois.")

    # Someone else is to vote on paper: marked first, then no ballot of theirs is taken.
    other = register(web)
    page = web.get(poll, params={"person": other["person_id"]})
    marked = web.post(f"{poll}/people/{other['person_id']}/paper",
                      data={"csrf": field(page.text, "csrf"), "identity_checked": "yes"})
    assert marked.status_code == 201, marked.text
    assert text_of(marked.text, "standing") == "A voté. Par : sur papier."
    assert 'id="paper-marked"' in marked.text and "/ballot\"" not in marked.text
    refused = web.post(f"{poll}/people/{other['person_id']}/ballot", data={
        "csrf": field(page.text, "csrf"), "idempotency_key": field(page.text,
                                                                   "idempotency_key"),
        "answer": "no", "identity_checked": "yes"})
    assert refused.status_code == 409 and "votant sur papier" in text_of(refused.text,
                                                                         "vote-problem")
    # A new card for someone who never used theirs: the old code stops working.
    new = web.post("/desk/cards", data={"csrf": field(page.text, "csrf"),
                                        "person": other["person_id"]})
    assert new.status_code == 201 and "Une nouvelle carte" in new.text
    assert text_of(new.text, "desk-code") != other["code"]
    r = web.post("/v1/auth/tokens", json={"desk_code": other["code"]})
    assert (r.status_code, r.json()["code"]) == (401, "code_invalid")

    # The result counts the assisted vote (yes) and the four papers entered.
    result = close(web, state)
    assert result["tally"]["counts"] == {"yes": 2, "no": 2, "abstain": 1}
    assert result["ballots_counted"] == 5
    closed = web.get(poll)
    assert "pendant que le vote est ouvert" in closed.text and "p0.serial" not in closed.text


def test_paper_lines_for_another_method_and_the_desk_in_english(web: TestClient,
                                                                outbox: Path) -> None:
    state = open_poll(web, outbox, rules=APPROVAL)
    make_agent(web, outbox)
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    home = web.get("/desk", headers=english)
    assert '<html lang="en">' in home.text and "Register a person" in home.text
    poll = f"/desk/polls/{state.poll_id}"
    page = web.get(poll, headers=english)
    assert 'name="p2.approved"' in page.text and 'name="p3.serial"' not in page.text
    more = web.get(poll, params={"rows": "5"}, headers=english)
    assert 'name="p4.serial"' in more.text
    entered = web.post(f"{poll}/paper-ballots", headers=english, data={
        "csrf": field(page.text, "csrf"), "rows": "3", "person": "",
        "p0.serial": "A-1", "p0.approved": ["bancs", "arbres"],
        "p1.serial": "A-2", "p1.approved": ["bancs", "arbres", "fontaine"],  # one too many
        "p2.serial": "A-3"})  # none approved: a blank ballot the rules allow
    assert entered.status_code == 200, entered.text
    assert text_of(entered.text, "batch-summary") == "Papers accepted: 2 of 3."
    lines = results_by_serial(entered.text)
    assert lines["A-1"].startswith("Accepted.") and lines["A-3"].startswith("Accepted.")
    # Why, in the page's words, then the API's: which rule it breaks.
    assert lines["A-2"].startswith("Refused: This ballot does not follow the poll's rules. (")
    result = close(web, state)
    assert result["tally"]["counts"] == {"bancs": 1, "arbres": 1, "fontaine": 0}


def test_a_participant_gets_nowhere_and_nothing_is_created(web: TestClient,
                                                            outbox: Path) -> None:
    state = open_poll(web, outbox)
    poll = f"/desk/polls/{state.poll_id}"
    sign_in(web, outbox, "curieux@example.org", "/desk")
    refused = web.get("/desk")
    assert refused.status_code == 403 and "réservé aux agents" in refused.text
    assert web.get(poll).status_code == 403
    csrf = field(refused.text, "csrf")
    person = me(web)
    for path, data in (
            ("/desk/people", {"idempotency_key": "k" * 32}),
            ("/desk/cards", {"person": person}),
            (f"{poll}/people/{person}/ballot", {"idempotency_key": "k" * 32, "answer": "yes",
                                                "identity_checked": "yes"}),
            (f"{poll}/people/{person}/paper", {"identity_checked": "yes"}),
            (f"{poll}/paper-ballots", {"rows": "10", "p0.serial": "Z-1", "p0.answer": "yes"})):
        r = web.post(path, data={"csrf": csrf, **data})
        assert r.status_code == 403 and "réservé aux agents" in r.text, (path, r.text)
    assert actions_of(web, outbox, person) == []
    assert close(web, state)["ballots_counted"] == 0


def test_every_desk_form_needs_its_csrf_token_and_a_refused_one_changes_nothing(
        web: TestClient, outbox: Path) -> None:
    state = open_poll(web, outbox)
    poll = f"/desk/polls/{state.poll_id}"
    make_agent(web, outbox)
    agent = me(web)
    person = register(web)["person_id"]
    before = actions_of(web, outbox, agent)
    for csrf in ({}, {"csrf": "not-the-cookie"}):
        for path, data in (
                ("/desk/people", {"idempotency_key": "k" * 32}),
                ("/desk/cards", {"person": person}),
                (f"{poll}/people/{person}/ballot", {"idempotency_key": "k" * 32,
                                                    "answer": "yes",
                                                    "identity_checked": "yes"}),
                (f"{poll}/people/{person}/paper", {"identity_checked": "yes"}),
                (f"{poll}/paper-ballots", {"rows": "10", "p0.serial": "Z-1",
                                           "p0.answer": "yes"})):
            r = web.post(path, data={**csrf, **data})
            assert r.status_code == 403 and "Ce formulaire a expiré" in r.text, (path, r.text)
    standing = web.get(poll, params={"person": person})
    assert text_of(standing.text, "standing") == "N'a pas encore voté."
    # Nothing registered, no card, no token, no batch: the log has only the look-up.
    assert actions_of(web, outbox, agent) == [*before, "sign_in_list.check.v1"]
    assert close(web, state)["ballots_counted"] == 0


def test_the_qr_code_is_put_in_the_page_only_as_a_drawing() -> None:
    """The API's SVG is redrawn from its paths, an image with a name; anything that is not
    a plain drawing (a script, a handler, a link, a style, an entity) is left out."""
    drawn = qr_markup(qr_svg("7KQ2-M9XD-4RTB-H0WE"), 'QR "code"')
    assert drawn is not None and drawn.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert 'role="img" aria-label="QR &#34;code&#34;"' in drawn and "<path " in drawn
    assert "<title>" not in drawn and 'viewBox="0 0 ' in drawn
    path = '<path d="M4 4.5h7"/>'
    for svg in (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">{path}'
            "<script>alert(1)</script></svg>",
            f'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9" onload="x()">{path}'
            "</svg>",
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            '<path d="M4 4.5h7" onclick="x()"/></svg>',
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            '<path d="M4 4.5h7" style="fill:url(https://evil.example/)"/></svg>',
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            '<a href="https://evil.example/"><path d="M4 4.5h7"/></a></svg>',
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">'
            '<foreignObject><p>hi</p></foreignObject></svg>',
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "x">]>'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9">{path}</svg>',
            f'<svg width="9" height="9">{path}</svg>',  # not an SVG element
            f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" height="9">{path}</svg>',
            '<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"></svg>',
            "<svg", "<p>not a drawing</p>", ""):
        assert qr_markup(svg, "QR") is None, svg


def test_a_district_that_is_no_name_is_said_so(web: TestClient, outbox: Path) -> None:
    state = open_poll(web, outbox)
    make_agent(web, outbox)
    home = web.get("/desk")
    refused = web.post("/desk/people", data={"csrf": field(home.text, "csrf"),
                                             "district": "*", "idempotency_key": "k" * 32})
    assert refused.status_code == 422 and "Un quartier est un nom" in refused.text
    assert 'value="*"' in refused.text  # what was typed stays
    page = web.get(f"/desk/polls/{state.poll_id}")
    papers = web.post(f"/desk/polls/{state.poll_id}/paper-ballots", data={
        "csrf": field(page.text, "csrf"), "rows": "10", "district": "*",
        "p0.serial": "D-1", "p0.answer": "yes"})
    assert papers.status_code == 422
    assert "Un quartier est un nom" in text_of(papers.text, "batch-problem")
    assert close(web, state)["ballots_counted"] == 0  # the paper was not entered
