"""``urne demo``: a consultation with one poll per voting method, voted on, closed and
published, through the public API of a running urne (either profile), for newcomers to
see the product and for operators to check a deployment. Then ``urne audit verify``
checks each poll.

Participants sign in as people do (a code by e-mail, read from the development outbox
file), or, with ``bulk``, get their voting tokens from the development-only bulk route.
Their ballots are random but valid for each method; one in ten votes again. With
``paper``, an admin (who may do what agents do) also enters that many paper ballots in
each poll, with their serials, as a town hall's desk would.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

YES_NO = {"method": "yes_no_abstain", "question": "Faut-il piétonniser la place du marché ?"}
OPTIONS = [{"id": f"o{i}", "title": title} for i, title in enumerate(
    ("Arbres", "Bancs", "Fontaine", "Kiosque", "Jeux"), 1)]
PROJECTS = [{"id": f"p{i}", "title": title, "cost": cost} for i, (title, cost) in enumerate(
    (("Aire de jeux", 60), ("Fontaine", 50), ("Bancs", 30), ("Jardin partagé", 20)), 1)]
GRADES = ["très bien", "bien", "assez bien", "passable", "insuffisant"]
POLLS: list[dict[str, Any]] = [
    YES_NO,
    {"method": "approval", "question": "Quels aménagements ?", "options": OPTIONS,
     "min_choices": 1, "max_choices": 3, "seats": 2},
    {"method": "ranking", "question": "Classez les aménagements", "options": OPTIONS,
     "max_ranks": 3},
    {"method": "majority_judgment", "question": "Jugez chaque aménagement",
     "options": OPTIONS[:3], "grades": GRADES},
    {"method": "budget", "question": "Budget participatif 2027", "projects": PROJECTS,
     "budget": 100},
]
RESULT_WAIT_SECONDS = 120.0


class DemoError(Exception):
    """The system did not do what the demo asked (the request and its answer)."""


def ballot(rules: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A random ballot that the rules accept."""
    method = rules["method"]
    if method == "yes_no_abstain":
        return {"method": method, "answer": rng.choice(["yes", "no", "abstain"])}
    ids = [o["id"] for o in rules.get("options", [])]
    if method == "approval":
        picked = rng.sample(ids, rng.randint(rules["min_choices"], rules["max_choices"]))
        return {"method": method, "approved": sorted(picked)}
    if method == "ranking":
        return {"method": method, "ranking": rng.sample(ids, rng.randint(1, rules["max_ranks"]))}
    if method == "majority_judgment":
        return {"method": method, "grades": {i: rng.choice(rules["grades"]) for i in ids}}
    if method == "budget":
        chosen, left = [], rules["budget"]
        for project in rng.sample(rules["projects"], len(rules["projects"])):
            if project["cost"] <= left and rng.random() < 0.6:
                chosen.append(project["id"])
                left -= project["cost"]
        return {"method": method, "projects": sorted(chosen)}
    raise ValueError(f"no demo ballot for {method}")


@dataclass
class Demo:
    http: httpx.Client
    participants: int
    outbox: Path
    organiser_email: str
    organiser_token: str | None = None
    bulk: bool = False
    rng: random.Random = field(default_factory=random.Random)
    paper: int = 0  # paper ballots per poll, entered by the admin below
    admin_email: str = "admin@urne.example"
    admin_token: str | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def call(self, method: str, path: str, expected: int, token: str | None = None,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.http.request(method, path, json=body, headers=headers)
        if r.status_code != expected:
            raise DemoError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json()) if r.content else {}

    def sign_in(self, email: str) -> str:
        self.call("POST", "/v1/auth/codes", 202, body={"email": email})
        code = last_code(self.outbox, email)
        return str(self.call("POST", "/v1/auth/tokens", 200,
                             body={"email": email, "code": code})["access_token"])

    def voting_tokens(self, poll_id: str, organiser: str, people: list[str]) -> list[str]:
        if self.bulk:
            return list(self.call("POST", f"/v1/testing/polls/{poll_id}/voting-tokens", 201,
                                  organiser, {"count": self.participants})["voting_tokens"])
        return [str(self.call("POST", f"/v1/polls/{poll_id}/voting-token", 201, person
                              )["voting_token"]) for person in people]

    def cast(self, poll_id: str, token: str, choice: dict[str, Any]) -> None:
        self.call("POST", f"/v1/polls/{poll_id}/ballots", 201, token, {"choice": choice})

    def enter_paper(self, poll_id: str, rules: dict[str, Any], admin: str, poll: int) -> None:
        batch = [{"serial": f"{self.run}-{poll}-{i}", "choice": ballot(rules, self.rng)}
                 for i in range(self.paper)]
        entered = self.call("POST", f"/v1/desk/polls/{poll_id}/paper-ballots", 200, admin,
                            {"ballots": batch})
        if entered["accepted"] != self.paper:
            raise DemoError(f"paper ballots of poll {poll_id}: {entered['results']}")

    def result(self, poll_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RESULT_WAIT_SECONDS
        while True:
            r = self.http.get(f"/v1/polls/{poll_id}/results")
            if r.status_code == 200:
                return dict(r.json())
            if time.monotonic() > deadline:
                raise DemoError(f"no result for poll {poll_id} after {RESULT_WAIT_SECONDS:.0f} s: "
                                f"{r.status_code} {r.text[:300]}")
            time.sleep(0.25)

    def __call__(self, progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
        organiser = self.organiser_token or self.sign_in(self.organiser_email)
        admin = (self.admin_token or self.sign_in(self.admin_email)) if self.paper else ""
        people = [] if self.bulk else [
            self.sign_in(f"demo-{self.run}-{i}@example.org") for i in range(self.participants)]
        progress(f"{self.participants} participants signed in")
        consultation = self.call("POST", "/v1/consultations", 201, organiser, {
            "title": "Démo urne : la place du marché",
            "description": "Une consultation de démonstration, un vote par méthode."})["id"]
        self.call("POST", f"/v1/consultations/{consultation}/publish", 200, organiser)
        polls = []
        for number, rules in enumerate(POLLS):
            poll = self.call("POST", f"/v1/consultations/{consultation}/polls", 201, organiser,
                             {"rules": rules})["id"]
            self.call("POST", f"/v1/polls/{poll}/open", 200, organiser)
            tokens = self.voting_tokens(poll, organiser, people)
            revotes = 0
            for token in tokens:
                self.cast(poll, token, ballot(rules, self.rng))
                if self.rng.random() < 0.1:
                    self.cast(poll, token, ballot(rules, self.rng))
                    revotes += 1
            if self.paper:
                self.enter_paper(poll, rules, admin, number)
            self.call("POST", f"/v1/polls/{poll}/close", 200, organiser)
            polls.append({"poll_id": poll, "method": rules["method"], "voters": len(tokens),
                          "revotes": revotes, "paper": self.paper})
            progress(f"{rules['method']}: {len(tokens)} voters, {revotes} revotes, "
                     f"{self.paper} paper ballots, closed")
        for poll in polls:
            summary = self.result(poll["poll_id"])
            poll["outcome"] = summary["tally"]["outcome"]
            poll["record_root"] = summary["record_root"]
        return {"url": str(self.http.base_url), "consultation_id": consultation,
                "participants": self.participants, "polls": polls}


def last_code(outbox: Path, email: str) -> str:
    """The last code the development outbox holds for ``email``."""
    try:
        lines = outbox.read_text().splitlines()
    except FileNotFoundError as exc:
        raise DemoError(f"no outbox at {outbox}: give --outbox (the development outbox "
                        "file of the urne you run), or --bulk") from exc
    for line in reversed(lines):
        message = json.loads(line)
        if message.get("to") == email:
            return str(message["code"])
    raise DemoError(f"no code for {email} in {outbox}")
