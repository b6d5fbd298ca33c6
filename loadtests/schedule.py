"""The open-loop plan of a load test: who sends what, and when.

Requests are sent at their planned time whatever the answers to the previous ones
(open loop): a slow server shows as latency, not as a gentler load. The mix is that
of a real consultation: answers with a Zipf popularity, a share of revotes, invalid
ballots (the server must refuse them) and duplicates (a client retrying with the same
Idempotency-Key, which must get the first receipt back).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Literal

ANSWERS = ("yes", "no", "abstain")
Kind = Literal["first", "revote", "invalid", "duplicate"]


@dataclass(frozen=True)
class Send:
    at: float  # seconds after the start
    voter: int  # index of the participant
    kind: Kind
    answer: str
    key: str  # Idempotency-Key
    replay_of: int | None = None  # the send a duplicate repeats


@dataclass(frozen=True)
class Mix:
    revotes: float = 0.10
    invalid: float = 0.02
    duplicates: float = 0.02


def arrival_times(rate: float, duration: float, surge_rate: float, surge_seconds: float,
                  rng: random.Random) -> list[float]:
    """Poisson arrivals at ``rate`` over ``duration`` seconds, at ``surge_rate`` instead
    during its last ``surge_seconds`` (a deadline surge)."""
    times: list[float] = []
    t = 0.0
    surge_from = duration - surge_seconds if surge_seconds > 0 else duration
    while True:
        current = surge_rate if t >= surge_from and surge_rate > 0 else rate
        t += rng.expovariate(current)
        if t >= duration:
            return times
        times.append(t)


def plan(participants: int, times: list[float], mix: Mix, seed: int = 7) -> list[Send]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(ANSWERS))]  # Zipf, s = 1
    order = list(range(participants))
    rng.shuffle(order)
    fresh = iter(order)
    voted: list[int] = []
    sends: list[Send] = []

    def answer() -> str:
        return rng.choices(ANSWERS, weights)[0]

    for at in times:
        roll = rng.random()
        if roll < mix.invalid and voted:
            voter = rng.choice(voted)
            sends.append(Send(at, voter, "invalid", "maybe", uuid.uuid4().hex))
            continue
        roll -= mix.invalid
        earlier = [i for i in range(max(0, len(sends) - 200), len(sends))
                   if sends[i].kind in ("first", "revote")]
        if roll < mix.duplicates and earlier:
            index = rng.choice(earlier)
            first = sends[index]
            sends.append(Send(at, first.voter, "duplicate", first.answer, first.key,
                              replay_of=index))
            continue
        roll -= mix.duplicates
        chosen = None if roll < mix.revotes and voted else next(fresh, None)
        if chosen is None:  # a revote, or everyone has voted once already
            if not voted:
                continue
            sends.append(Send(at, rng.choice(voted), "revote", answer(), uuid.uuid4().hex))
        else:
            voted.append(chosen)
            sends.append(Send(at, chosen, "first", answer(), uuid.uuid4().hex))
    return sends
