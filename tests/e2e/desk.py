"""An agent's desk over HTTP, either profile (issue 9's acceptance: agent registration,
paper batch entry): an admin makes someone an agent; the agent registers a person who
has neither e-mail nor phone and prints their card; the person signs in with it at a
kiosk, once, and votes; someone else votes at the desk with the agent's help; the
sign-in list shows who has voted, and the turnout; the agent enters a batch of paper
ballots; every ballot is counted; the action log names the agent."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.e2e.scenario import (
    ADMIN,
    ORGANISER_B,
    PROBLEM,
    bearer,
    close_and_verify,
    login,
    open_poll,
    sign_in,
    vote,
    wait_until,
)


def run_desk(http: httpx.Client, outbox: Path) -> None:
    state = open_poll(http, outbox)
    admin = login(http, outbox, ADMIN)
    clerk = f"desk-agent-{uuid.uuid4().hex[:8]}@example.org"
    r = http.put("/v1/admin/roles", headers=admin, json={"email": clerk, "role": "agent"})
    assert r.status_code == 200 and r.json()["role"] == "agent", r.text
    agent = sign_in(http, outbox, clerk)

    # Only agents (and admins) register; bad input changes nothing.
    citizen = sign_in(http, outbox, f"desk-citizen-{uuid.uuid4().hex[:8]}@example.org")
    for headers, body, status, code in (
            (citizen, {}, 403, "forbidden"),
            (agent, {"district": "nord", "email": "x@example.org"}, 422, "invalid_request"),
            (agent, {"district": "*"}, 422, "invalid_request")):
        r = http.post("/v1/desk/people", headers=headers, json=body)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            status, PROBLEM, code), r.text

    # Sent twice with one Idempotency-Key (an answer lost): one person, the second card.
    key = {"Idempotency-Key": f"desk-{uuid.uuid4().hex}"}
    lost = http.post("/v1/desk/people", headers=agent | key, json={"district": "nord"})
    r = http.post("/v1/desk/people", headers=agent | key, json={"district": "nord"})
    assert lost.status_code == r.status_code == 201, r.text
    card = r.json()
    assert card["person_id"] == lost.json()["person_id"]
    assert card["desk_code"] != lost.json()["desk_code"]
    r = http.post("/v1/auth/tokens", json={"desk_code": lost.json()["desk_code"]})
    assert (r.status_code, r.json()["code"]) == (401, "code_invalid"), r.text
    assert set(card) == {"person_id", "desk_code", "expires_at", "qr_svg"}
    svg = ET.fromstring(card["qr_svg"])
    assert svg.tag.endswith("svg") and card["desk_code"] not in card["qr_svg"]

    # At the kiosk: the code as typed from the card signs in, once.
    typed = card["desk_code"].lower().replace("-", " ")
    r = http.post("/v1/auth/tokens", json={"desk_code": typed})
    assert r.status_code == 200 and r.json()["person_id"] == card["person_id"], r.text
    person = bearer(r.json()["access_token"])
    r = http.post("/v1/auth/tokens", json={"desk_code": card["desk_code"]})
    assert (r.status_code, r.json()["code"]) == (401, "code_invalid"), r.text
    for body in ({"desk_code": card["desk_code"], "code": "123456"},
                 {"desk_code": card["desk_code"], "email": clerk}):
        r = http.post("/v1/auth/tokens", json=body)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), r.text
    me = http.get("/v1/me", headers=person).json()
    assert (me["email"], me["phone"], me["role"], me["district"]) == (
        None, None, "participant", "nord")

    # Once they have signed in with a card, a new one is an admin's to give (it voids
    # the old); never a card for an e-mail account.
    r = http.post(f"/v1/desk/people/{card['person_id']}/codes", headers=agent)
    assert (r.status_code, r.json()["code"]) == (403, "desk_card_used"), r.text
    r = http.post(f"/v1/desk/people/{card['person_id']}/codes", headers=admin)
    assert r.status_code == 201 and r.json()["desk_code"] != card["desk_code"], r.text
    citizen_id = http.get("/v1/me", headers=citizen).json()["person_id"]
    r = http.post(f"/v1/desk/people/{citizen_id}/codes", headers=agent)
    assert (r.status_code, r.json()["code"]) == (403, "not_registered_at_desk"), r.text

    # The sign-in list: nobody has voted yet.
    listed = f"/v1/desk/polls/{state.poll_id}/people/{card['person_id']}"
    r = http.get(listed, headers=agent)
    assert r.status_code == 200 and r.json() == {
        "poll_id": state.poll_id, "person_id": card["person_id"], "voted": False,
        "channels": []}, r.text

    # They vote like anyone, and their ballot is counted.
    r = http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=person)
    assert r.status_code == 201, r.text
    state.tokens[card["person_id"]] = r.json()["voting_token"]
    vote(http, outbox, state, card["person_id"], "no")
    check_sign_in_list(http, state.poll_id, listed, agent=agent, citizen=citizen,
                       citizen_id=citizen_id)

    # Someone who signs in by e-mail votes at the desk, with the agent's help: their own
    # ballot, channel desk. Only agents (and admins) ask for such a token.
    assisted = f"/v1/desk/polls/{state.poll_id}/people/{citizen_id}/voting-token"
    r = http.post(assisted, headers=citizen)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
    r = http.post(assisted, headers=agent)
    assert r.status_code == 201, r.text
    state.tokens["at the desk"] = r.json()["voting_token"]
    vote(http, outbox, state, "at the desk", "yes")
    citizen_listed = f"/v1/desk/polls/{state.poll_id}/people/{citizen_id}"
    assert wait_until(lambda: http.get(citizen_listed, headers=agent).json()["voted"],
                      timeout=30)
    assert http.get(citizen_listed, headers=agent).json()["channels"] == ["desk"]

    # Paper ballots, entered in a batch with their serials.
    paper = f"/v1/desk/polls/{state.poll_id}/paper-ballots"
    yes_no = {"method": "yes_no_abstain"}
    batch = [{"serial": f"B7-{n}", "choice": yes_no | {"answer": answer}}
             for n, answer in ((1, "yes"), (2, "no"), (3, "abstain"))]
    r = http.post(paper, headers=agent, json={"ballots": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    entered = r.json()["results"]
    assert [(e["serial"], e["status"]) for e in entered] == [
        ("B7-1", 201), ("B7-2", 201), ("B7-3", 201)]
    for e in entered:
        state.receipts[e["serial"]] = [e["receipt"]]
    # The same paper again (its serial in lower case) is the same ballot; with another
    # choice it is refused, and counted as first entered.
    r = http.post(paper, headers=agent, json={"ballots": [
        {"serial": "b7-1", "choice": yes_no | {"answer": "yes"}},
        {"serial": "B7-2", "choice": yes_no | {"answer": "yes"}}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    again, changed = r.json()["results"]
    assert again["receipt"] == entered[0]["receipt"]
    assert (changed["status"], changed["code"]) == (422, "idempotency_key_reused")
    # Refused whole: twice the same serial, a wrong choice's method, someone not an agent.
    for headers, body, status, code in (
            (agent, {"ballots": [batch[0], batch[0] | {"serial": "b7-1"}]}, 422,
             "paper_serial_twice"),
            (agent, {"ballots": [{"serial": "B7-9", "choice": {"method": "approval"}}]}, 422,
             "invalid_request"),
            (agent, {"ballots": []}, 422, "invalid_request"),
            (citizen, {"ballots": batch}, 403, "forbidden")):
        r = http.post(paper, headers=headers, json=body)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            status, PROBLEM, code), r.text

    # The turnout counts people: the desk person, in their district; papers are not people.
    turnout = f"/v1/polls/{state.poll_id}/turnout"
    expected = {"poll_id": state.poll_id, "voters": 2, "channels": {"desk": 1, "online": 1},
                "districts": [{"district": "nord", "voters": 1, "channels": {"online": 1}},
                              {"district": None, "voters": 1, "channels": {"desk": 1}}]}
    assert http.get(turnout, headers=state.organiser).json() == expected
    assert http.get(turnout, headers=admin).json() == expected
    other = login(http, outbox, ORGANISER_B)
    for headers, status, code in ((agent, 403, "forbidden"), (citizen, 403, "forbidden"),
                                  (other, 403, "not_an_organiser")):
        r = http.get(turnout, headers=headers)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            status, PROBLEM, code), r.text

    close_and_verify(http, state, {"yes": 2, "no": 2, "abstain": 1})

    # The admin reads who did it: the agent's id, never the code.
    month = datetime.now(UTC).strftime("%Y-%m")
    r = http.get("/v1/admin/actions", headers=admin, params={"month": month})
    agent_id = http.get("/v1/me", headers=agent).json()["person_id"]
    assert r.status_code == 200, r.text
    mine = [a for a in r.json()["actions"] if a["actor"] == agent_id]
    # Each look-up at the sign-in list is there too (the waits polled it: five at least).
    looked = [a for a in mine if a["action"] == "sign_in_list.check.v1"]
    assert len(looked) >= 5 and looked[0]["subject"] == {
        "poll_id": state.poll_id, "person_id": card["person_id"]}
    acts = [a for a in mine if a["action"] != "sign_in_list.check.v1"]
    assert [(a["service"], a["action"]) for a in acts] == [
        *[("identity", "desk.person.register.v1")] * 2,
        ("identity", "desk_voting_token.issue.v1"),
        *[("identity", "paper_voting_tokens.issue.v1")] * 2]
    assert acts[2]["subject"] == {"poll_id": state.poll_id, "person_id": citizen_id,
                                  "channel": "desk"}
    assert acts[3]["subject"]["serials"] == ["B7-1", "B7-2", "B7-3"]
    assert mine[0]["subject"] == {"person_id": card["person_id"], "district": "nord"}
    assert card["desk_code"] not in r.text


def check_sign_in_list(http: httpx.Client, poll_id: str, listed: str, *, agent: dict,
                       citizen: dict, citizen_id: str) -> None:
    """After the desk person's ballot: the agent sees they have voted, online (seconds
    behind the ballot: the vote service tells identity after its batch); who has not
    voted has not; only agents look, and only at people and polls that exist."""
    def voted() -> bool:
        return http.get(listed, headers=agent).json()["voted"]
    assert wait_until(voted, timeout=30), "the sign-in list never showed the ballot"
    assert http.get(listed, headers=agent).json()["channels"] == ["online"]
    r = http.get(f"/v1/desk/polls/{poll_id}/people/{citizen_id}", headers=agent)
    assert r.status_code == 200 and r.json()["voted"] is False, r.text
    for path, headers, status, code in (
            (listed, citizen, 403, "forbidden"),
            (f"/v1/desk/polls/{poll_id}/people/{'0' * 32}", agent, 404, "person_not_found"),
            (f"/v1/desk/polls/{'0' * 32}/people/{citizen_id}", agent, 404, "poll_not_found")):
        r = http.get(path, headers=headers)
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            status, PROBLEM, code), r.text
