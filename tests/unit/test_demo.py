"""``urne demo``'s ballots: random, and always valid under each poll's rules (the
demo's polls are the product's own showcase: a refused ballot would stop it)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from urne.counting import rules_adapter, validate_choice
from urne.runtime.demo import POLLS, DemoError, ballot, last_code

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("rules", POLLS, ids=[p["method"] for p in POLLS])
def test_every_demo_ballot_is_valid_and_they_vary(rules: dict) -> None:
    frozen = rules_adapter.validate_python(rules)
    rng = random.Random(1)
    seen = set()
    for _ in range(300):
        choice = ballot(rules, rng)
        validate_choice(frozen, choice)  # raises InvalidBallot on a bad one
        seen.add(repr(sorted(choice.items())))
    assert len(seen) > 2  # not one ballot again and again


def test_the_code_comes_from_the_outbox_or_the_demo_says_why(tmp_path: Path) -> None:
    outbox = tmp_path / "email.jsonl"
    with pytest.raises(DemoError, match="--outbox"):
        last_code(outbox, "ada@example.org")
    outbox.write_text('{"to": "ada@example.org", "code": "111111"}\n'
                      '{"to": "bob@example.org", "code": "222222"}\n'
                      '{"to": "ada@example.org", "code": "333333"}\n')
    assert last_code(outbox, "ada@example.org") == "333333"
    with pytest.raises(DemoError, match="no code for chloe"):
        last_code(outbox, "chloe@example.org")
