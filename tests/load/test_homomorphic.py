"""The encrypted-ballot prototype the receipt benchmark measures
(loadtests/homomorphic.py): its figures mean something only if it is right, so each
property it relies on is checked: honest ballots pass, the homomorphic tally decrypts
to the plain counts, and a ballot that cheats or was touched is refused."""

from __future__ import annotations

import random

import pytest

from loadtests.homomorphic import (
    Ballot,
    Ciphertext,
    add,
    base,
    discrete_log,
    encrypt,
    encrypt_bits,
    mul,
    random_scalar,
    s_add,
    scalar,
    sub,
    summed,
    valid,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    secret = random_scalar()
    return secret, base(secret)


def test_honest_ballots_pass_and_count(keys: tuple[bytes, bytes]) -> None:
    secret, public = keys
    rng = random.Random(3)
    choices = [rng.randrange(3) for _ in range(12)]
    ballots = [encrypt(public, c, 3) for c in choices]
    assert all(valid(public, b) for b in ballots)
    counts = [discrete_log(sub(b, mul(secret, a)), 12)
              for a, b in (summed([x.answers[i] for x in ballots]) for i in range(3))]
    assert counts == [choices.count(i) for i in range(3)]


@pytest.mark.parametrize("bits", [[1, 1, 0], [0, 0, 0]])
def test_a_ballot_that_does_not_choose_exactly_one_answer_is_refused(
        keys: tuple[bytes, bytes], bits: list[int]) -> None:
    """Each answer honestly proven 0 or 1: the overall proof catches the sum."""
    _, public = keys
    assert not valid(public, encrypt_bits(public, bits))


def test_an_answer_worth_two_is_refused_though_the_sum_is_one(
        keys: tuple[bytes, bytes]) -> None:
    """2 for one answer, -1 for another: the sum (and its proof) still hold, the proofs
    of 0 or 1 do not."""
    _, public = keys
    honest = encrypt(public, 0, 3)
    one = base(scalar(1))
    first, second = honest.answers[0], honest.answers[1]
    shifted = [Ciphertext(first.a, add(first.b, one)), Ciphertext(second.a, sub(second.b, one)),
               honest.answers[2]]
    assert summed(shifted) == summed(honest.answers)
    assert not valid(public, Ballot(shifted, honest.bits, honest.overall))


def test_a_touched_ballot_is_refused(keys: tuple[bytes, bytes]) -> None:
    _, public = keys
    honest = encrypt(public, 1, 3)
    c0, c1, s0, s1 = honest.bits[1]
    first = honest.answers[0]
    for forged in (
            Ballot(honest.answers, [honest.bits[0], (c0, c1, s_add(s0, scalar(1)), s1),
                                    honest.bits[2]], honest.overall),
            Ballot([Ciphertext(first.b, first.a), *honest.answers[1:]], honest.bits,
                   honest.overall),
            Ballot(honest.answers, honest.bits, (honest.overall[0], scalar(5))),
            Ballot(honest.answers[:2], honest.bits[:2], honest.overall)):
        assert not valid(public, forged)
    assert valid(public, honest)


def test_the_discrete_logarithm_finds_every_count_up_to_its_bound() -> None:
    for m in (0, 1, 2, 9, 10, 11, 99, 100):
        point = bytes([1]) + bytes(31) if m == 0 else base(scalar(m))
        assert discrete_log(point, 100) == m
