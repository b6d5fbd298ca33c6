"""Both cross-channel policies over HTTP, either profile (issue 9's acceptance): someone
votes at a desk with an agent's help, then tries online. In a poll where a ballot cast in
person is final, the online ballot is refused (409 ``voted_in_person``) and the desk
ballot counts; where the latest wins, the online ballot replaces it. Voting at the desk
after voting online replaces the online ballot under both; someone marked as voting on
paper votes no other way, and someone who voted cannot be marked."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.e2e.scenario import (
    ADMIN,
    PROBLEM,
    OpenPoll,
    close_and_verify,
    login,
    open_poll,
    sign_in,
    vote,
    wait_until,
)
from tests.support.audit_schema import conforms
from urne.crypto.tokens import agent_key


def run_cross_channel(http: httpx.Client, outbox: Path) -> None:
    admin = login(http, outbox, ADMIN)
    clerk = f"cross-agent-{uuid.uuid4().hex[:8]}@example.org"
    r = http.put("/v1/admin/roles", headers=admin, json={"email": clerk, "role": "agent"})
    assert r.status_code == 200, r.text
    agent = sign_in(http, outbox, clerk)
    for policy in ("in_person_final", "latest_wins"):
        state = open_poll(http, outbox, cross_channel=policy)
        at_desk_first = f"desk-first-{uuid.uuid4().hex[:8]}@example.org"
        online_first = f"online-first-{uuid.uuid4().hex[:8]}@example.org"
        people = {email: sign_in(http, outbox, email) for email in (at_desk_first,
                                                                     online_first)}

        def at_the_desk(email: str, answer: str, state=state, people=people) -> None:
            person_id = http.get("/v1/me", headers=people[email]).json()["person_id"]
            r = http.post(f"/v1/desk/polls/{state.poll_id}/people/{person_id}/voting-token",
                          headers=agent)
            assert r.status_code == 201, r.text
            state.tokens[email] = r.json()["voting_token"]  # the desk's token from now on
            vote(http, outbox, state, email, answer)

        # At the desk, then online.
        at_the_desk(at_desk_first, "yes")
        r = http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=people[at_desk_first])
        assert r.status_code == 201, r.text
        if policy == "in_person_final":
            online = {"Authorization": f"Bearer {r.json()['voting_token']}"}
            r = http.post(f"/v1/polls/{state.poll_id}/ballots", headers=online,
                          json={"choice": {"method": "yes_no_abstain", "answer": "no"}})
            assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
                409, PROBLEM, "voted_in_person"), r.text
        else:
            state.tokens[at_desk_first] = r.json()["voting_token"]
            vote(http, outbox, state, at_desk_first, "no")  # replaces the desk ballot
        # Online, then at the desk: the desk ballot replaces it, under both.
        vote(http, outbox, state, online_first, "no")
        at_the_desk(online_first, "abstain")
        on_paper(http, outbox, state, agent, people[online_first])
        r = http.get(f"/v1/polls/{state.poll_id}", headers=state.organiser)
        assert r.json()["cross_channel"] == policy
        # Public with the frozen rules: an auditor reads why a desk entry stands.
        frozen = http.get(f"/v1/audit/polls/{state.poll_id}/rules").json()
        assert frozen["cross_channel"] == policy and conforms("frozen_rules", frozen) == []
        expected = ({"yes": 2, "no": 0, "abstain": 1} if policy == "in_person_final"
                    else {"yes": 1, "no": 1, "abstain": 1})
        close_and_verify(http, state, expected)
        # Every desk and paper ballot is this agent's, by the name anyone who knows their
        # person id recomputes: the signed reconciliation by agent says so for their two
        # desk ballots; their one paper is pooled, below the minimum cell size of 2 the
        # systems under test keep (URNE_MIN_CELL).
        agent_id = http.get("/v1/me", headers=agent).json()["person_id"]
        result = http.get(f"/v1/audit/polls/{state.poll_id}/result").json()["result"]
        reconciliation = result["reconciliation"]
        channels = reconciliation["channels"]
        assert (channels["desk"]["entries"], channels["paper"]["entries"]) == (2, 1)
        assert {k: v for k, v in reconciliation.items() if k != "channels"} == {
            "agents": {agent_key(agent_id, state.poll_id): {"desk": channels["desk"]}},
            "agents_pooled": {"paper": {"agents": 1, **channels["paper"]}},
            "min_cell": 2}, reconciliation


def on_paper(http: httpx.Client, outbox: Path, state: OpenPoll, agent: dict,
             has_voted: dict) -> None:
    """Under both policies: the agent marks someone as voting on paper (the sign-in list
    says so), after which no ballot of theirs is taken; someone who has voted cannot be
    marked; the paper itself is entered by its serial, and counted."""
    email = f"paper-{uuid.uuid4().hex[:8]}@example.org"
    person = sign_in(http, outbox, email)
    person_id = http.get("/v1/me", headers=person).json()["person_id"]
    desk = f"/v1/desk/polls/{state.poll_id}/people"
    r = http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=person)
    assert r.status_code == 201, r.text
    asked_before = {"Authorization": f"Bearer {r.json()['voting_token']}"}
    for _ in range(2):  # marking again is safe
        r = http.post(f"{desk}/{person_id}/paper", headers=agent)
        assert r.status_code == 201 and r.json() == {
            "poll_id": state.poll_id, "person_id": person_id, "voted": True,
            "channels": ["paper"]}, r.text
    assert wait_until(lambda: http.get(f"{desk}/{person_id}", headers=agent).json()[
        "channels"] == ["paper"], timeout=30)
    # A voting token asked before the mark votes no more (the vote service decides);
    # none is given after it.
    r = http.post(f"/v1/polls/{state.poll_id}/ballots", headers=asked_before,
                  json={"choice": {"method": "yes_no_abstain", "answer": "no"}})
    assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
        409, PROBLEM, "voted_on_paper"), r.text
    for ask in (lambda: http.post(f"/v1/polls/{state.poll_id}/voting-token", headers=person),
                lambda: http.post(f"{desk}/{person_id}/voting-token", headers=agent)):
        r = ask()
        assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
            409, PROBLEM, "voted_on_paper"), r.text
    voted_id = http.get("/v1/me", headers=has_voted).json()["person_id"]
    r = http.post(f"{desk}/{voted_id}/paper", headers=agent)
    assert (r.status_code, r.json()["code"]) == (409, "already_voted"), r.text
    r = http.post(f"{desk}/{person_id}/paper", headers=person)  # not an agent
    assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
    serial = f"P-{uuid.uuid4().hex[:8]}"
    r = http.post(f"/v1/desk/polls/{state.poll_id}/paper-ballots", headers=agent, json={
        "ballots": [{"serial": serial, "choice": {"method": "yes_no_abstain",
                                                  "answer": "yes"}}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    state.receipts[serial] = [r.json()["results"][0]["receipt"]]
