"""Both cross-channel policies over HTTP, either profile (issue 9's acceptance): someone
votes at a desk with an agent's help, then tries online. In a poll where a ballot cast in
person is final, the online ballot is refused (409 ``voted_in_person``) and the desk
ballot counts; where the latest wins, the online ballot replaces it. Voting at the desk
after voting online replaces the online ballot under both."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.e2e.scenario import (
    ADMIN,
    PROBLEM,
    close_and_verify,
    login,
    open_poll,
    sign_in,
    vote,
)


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
        r = http.get(f"/v1/polls/{state.poll_id}", headers=state.organiser)
        assert r.json()["cross_channel"] == policy
        expected = ({"yes": 1, "no": 0, "abstain": 1} if policy == "in_person_final"
                    else {"yes": 0, "no": 1, "abstain": 1})
        close_and_verify(http, state, expected)
