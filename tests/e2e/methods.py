"""Every voting method, end to end through the gateway: create, open, vote (with a
revote and a refused ballot), close, and the published result checked against a tally
worked out by hand here (the auditor's recount in ``close_and_verify`` adds urne's own
counting on top). Run against both profiles by test_embedded and test_distributed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.scenario import (
    OpenPoll,
    bearer,
    close_and_verify,
    login,
    open_poll,
    vote,
    voting_token,
)

ALICE, BOB, CHLOE = "alice@example.org", "bob@example.org", "chloe@example.org"


def _options(*ids: str) -> list[dict[str, str]]:
    return [{"id": i, "title": f"Projet {i}"} for i in ids]


def refused(http: httpx.Client, outbox: Path, state: OpenPoll, email: str,
            choice: dict[str, Any], detail: str) -> None:
    """A ballot that breaks the rules: 422 ``ballot_invalid``, and nothing stored."""
    r = http.post(f"/v1/polls/{state.poll_id}/ballots",
                  headers=bearer(voting_token(http, outbox, state, email)),
                  json={"choice": choice})
    assert r.status_code == 422 and r.json()["code"] == "ballot_invalid", r.text
    assert detail in r.json()["detail"], r.json()


def approval(http: httpx.Client, outbox: Path) -> None:
    rules = {"method": "approval", "question": "Quels aménagements ?",
             "options": _options("a", "b", "c"), "min_choices": 1, "max_choices": 2}
    state = open_poll(http, outbox, rules)
    ballot = {"method": "approval"}
    vote(http, outbox, state, ALICE, {**ballot, "approved": ["a", "b"]})
    vote(http, outbox, state, BOB, {**ballot, "approved": ["b"]})
    vote(http, outbox, state, CHLOE, {**ballot, "approved": ["c"]})
    vote(http, outbox, state, CHLOE, {**ballot, "approved": ["c", "b"]})  # revote
    refused(http, outbox, state, BOB, {**ballot, "approved": ["a", "b", "c"]}, "between 1 and 2")
    refused(http, outbox, state, BOB, {**ballot, "approved": ["z"]}, "z")
    close_and_verify(http, state, tally={
        "method": "approval", "ballots": 3, "counts": {"a": 1, "b": 3, "c": 1},
        "winners": ["b"], "tied": [], "outcome": "decided"})


def ranking(http: httpx.Client, outbox: Path) -> None:
    # Borda over two ranks: 2 points for a first place, 1 for a second.
    rules = {"method": "ranking", "question": "Classez les projets",
             "options": _options("a", "b", "c"), "max_ranks": 2}
    state = open_poll(http, outbox, rules)
    ballot = {"method": "ranking"}
    vote(http, outbox, state, ALICE, {**ballot, "ranking": ["a", "b"]})
    vote(http, outbox, state, BOB, {**ballot, "ranking": ["b", "a"]})
    vote(http, outbox, state, CHLOE, {**ballot, "ranking": ["c"]})
    vote(http, outbox, state, CHLOE, {**ballot, "ranking": ["b"]})  # revote
    refused(http, outbox, state, BOB, {**ballot, "ranking": ["a", "a"]}, "a")
    refused(http, outbox, state, BOB, {**ballot, "ranking": ["a", "b", "c"]}, "2")
    close_and_verify(http, state, tally={
        "method": "ranking", "ballots": 3, "points": {"a": 3, "b": 5, "c": 0},
        "first_preferences": {"a": 1, "b": 2, "c": 0}, "winners": ["b"], "outcome": "decided"})


def majority_judgment(http: httpx.Client, outbox: Path) -> None:
    rules = {"method": "majority_judgment", "question": "Jugez chaque projet",
             "options": _options("a", "b"), "grades": ["très bien", "bien", "passable"]}
    state = open_poll(http, outbox, rules)

    def ballot(a: str, b: str) -> dict[str, Any]:
        return {"method": "majority_judgment", "grades": {"a": a, "b": b}}

    vote(http, outbox, state, ALICE, ballot("très bien", "bien"))
    vote(http, outbox, state, BOB, ballot("très bien", "bien"))
    vote(http, outbox, state, CHLOE, ballot("passable", "très bien"))
    vote(http, outbox, state, CHLOE, ballot("bien", "passable"))  # revote
    refused(http, outbox, state, BOB, {"method": "majority_judgment",
                                       "grades": {"a": "bien"}}, "b")
    refused(http, outbox, state, BOB, ballot("excellent", "bien"), "excellent")
    # a: très bien, très bien, bien -> median "très bien"; b: bien, bien, passable -> "bien".
    close_and_verify(http, state, tally={
        "method": "majority_judgment", "ballots": 3,
        "grades": {"a": [2, 1, 0], "b": [0, 2, 1]},
        "majority_grade": {"a": "très bien", "b": "bien"},
        "winners": ["a"], "outcome": "decided"})


def budget(http: httpx.Client, outbox: Path) -> None:
    projects = [{"id": "p1", "title": "Aire de jeux", "cost": 60},
                {"id": "p2", "title": "Fontaine", "cost": 50},
                {"id": "p3", "title": "Bancs", "cost": 30}]
    rules = {"method": "budget", "question": "Budget participatif", "projects": projects,
             "budget": 100}
    state = open_poll(http, outbox, rules)
    ballot = {"method": "budget"}
    vote(http, outbox, state, ALICE, {**ballot, "projects": ["p1", "p3"]})  # 90
    vote(http, outbox, state, BOB, {**ballot, "projects": ["p2", "p3"]})  # 80
    vote(http, outbox, state, CHLOE, {**ballot, "projects": ["p2"]})
    vote(http, outbox, state, CHLOE, {**ballot, "projects": ["p1"]})  # revote
    refused(http, outbox, state, BOB, {**ballot, "projects": ["p1", "p2"]}, "110")
    # Votes: p1 2, p3 2, p2 1. By votes, then the cheaper first: p3 (30, 70 left),
    # p1 (60, 10 left); p2 (50) no longer fits.
    close_and_verify(http, state, tally={
        "method": "budget", "ballots": 3, "winners": ["p1", "p3"], "outcome": "decided",
        "districts": {"*": {"budget": 100, "ballots": 3, "votes": {"p1": 2, "p2": 1, "p3": 2},
                            "ranking": ["p3", "p1", "p2"], "selected": ["p3", "p1"],
                            "spent": 90, "remaining": 10}}})


def budget_per_district(http: httpx.Client, outbox: Path) -> None:
    projects = [{"id": "n1", "title": "Piste cyclable", "cost": 80, "district": "nord"},
                {"id": "n2", "title": "Jardin partagé", "cost": 40, "district": "nord"},
                {"id": "s1", "title": "Préau", "cost": 50, "district": "sud"}]
    rules = {"method": "budget", "question": "Budget par quartier", "projects": projects,
             "budgets": {"nord": 100, "sud": 50}}
    for email, district in ((ALICE, "nord"), (BOB, "nord"), (CHLOE, "sud")):
        r = http.put("/v1/me/district", headers=login(http, outbox, email),
                     json={"district": district})
        assert r.status_code == 200 and r.json()["district"] == district, r.text
    state = open_poll(http, outbox, rules)
    ballot = {"method": "budget"}
    vote(http, outbox, state, ALICE, {**ballot, "projects": ["n1"]})
    vote(http, outbox, state, BOB, {**ballot, "projects": ["n2"]})
    refused(http, outbox, state, BOB, {**ballot, "projects": ["s1"]}, "nord")
    vote(http, outbox, state, CHLOE, {**ballot, "projects": ["s1"]})
    # nord: n1 and n2 one vote each, the cheaper first: n2 (60 left), then n1 (80) no
    # longer fits. sud: s1 costs exactly the budget, and is funded.
    close_and_verify(http, state, tally={
        "method": "budget", "ballots": 3, "winners": ["n2", "s1"], "outcome": "decided",
        "districts": {
            "nord": {"budget": 100, "ballots": 2, "votes": {"n1": 1, "n2": 1},
                     "ranking": ["n2", "n1"], "selected": ["n2"], "spent": 40,
                     "remaining": 60},
            "sud": {"budget": 50, "ballots": 1, "votes": {"s1": 1}, "ranking": ["s1"],
                    "selected": ["s1"], "spent": 50, "remaining": 0}}})


METHODS: dict[str, Callable[[httpx.Client, Path], None]] = {
    "approval": approval, "ranking": ranking, "majority_judgment": majority_judgment,
    "budget": budget, "budget_per_district": budget_per_district,
}
