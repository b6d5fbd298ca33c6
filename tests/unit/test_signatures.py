"""Signed envelopes (urne/messaging/signatures.py): what a consumer takes and refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urne.contracts import wrap
from urne.contracts.commands import GetPoll
from urne.contracts.envelope import REGISTRY
from urne.contracts.events import PollClosed
from urne.contracts.schemas import export
from urne.crypto.keys import ENVELOPE_KEY_NAMES, generate_keys
from urne.messaging.signatures import (
    BATCH_REPLY_TYPE,
    REPLY_TYPE,
    SIGNATURE,
    SIGNED_PREFIX,
    RecentIds,
    Refused,
    Verifier,
    allowed,
    batch_reply,
    load_signer,
    load_verifier,
    signed_bytes,
    signed_reply,
)
from urne.platform.metrics import MESSAGES_REFUSED, MESSAGES_REPEATED

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys")
    generate_keys(path, ENVELOPE_KEY_NAMES)
    return path


@pytest.fixture(scope="module")
def verifier(keys: Path) -> Verifier:
    return load_verifier(keys, "test")


def closed(producer: str = "proposal") -> dict[str, Any]:
    return wrap(PollClosed(poll_id="p1", closed_at=AT), producer)


def reason(verifier: Verifier, raw: Any) -> str:
    with pytest.raises(Refused) as refused:
        verifier.check(raw)
    return refused.value.reason


def test_a_signed_envelope_passes_and_names_its_key(keys: Path, verifier: Verifier) -> None:
    signer = load_signer(keys, "proposal")
    raw = signer.sign(closed())
    verifier.check(raw)
    assert raw[SIGNATURE]["kid"] == signer.kid
    # It survives the wire: JSON out and back, members in any order.
    verifier.check(json.loads(json.dumps(dict(reversed(list(raw.items()))))))


def test_every_way_of_forging_is_refused_with_its_reason(keys: Path, verifier: Verifier) -> None:
    proposal, gateway = load_signer(keys, "proposal"), load_signer(keys, "gateway")
    good = proposal.sign(closed())
    foreign = generate_keys_elsewhere(keys.parent / "foreign")
    as_gateway = {**closed(), SIGNATURE: {
        "kid": gateway.kid, "sig": gateway.sign(closed("gateway"))[SIGNATURE]["sig"]}}
    cases = {
        "unsigned": closed(),
        "unreadable": ["not", "an", "envelope"],
        "unknown_key": foreign.sign(closed()),
        # signed by the gateway, but naming the proposal service as its producer
        "wrong_producer": as_gateway,
        # the gateway, under its own name, sending an event that is proposal's
        "not_allowed": gateway.sign(closed("gateway")),
    }
    for expected, raw in cases.items():
        assert reason(verifier, raw) == expected, expected
    for tamper in ({"trace_id": "x" * 32}, {"producer": "vote"},
                   {"payload": {**good["payload"], "poll_id": "p2"}}, {"extra": 1},
                   {SIGNATURE: {**good[SIGNATURE], "sig": "AAAA"}},
                   {SIGNATURE: {**good[SIGNATURE], "sig": 7}}):
        got = reason(verifier, {**good, **tamper})
        assert got == ("wrong_producer" if "producer" in tamper else "bad_signature"), tamper


def generate_keys_elsewhere(path: Path) -> Any:
    generate_keys(path, ("envelope-proposal",))
    return load_signer(path, "proposal")


def test_refusals_are_counted_by_consumer_and_reason(verifier: Verifier) -> None:
    counter = MESSAGES_REFUSED.labels("test", "unsigned")
    before = counter._value.get()
    assert verifier.admit(closed()) is not None
    assert counter._value.get() == before + 1


def test_a_reply_is_taken_only_signed_by_the_service_asked(keys: Path) -> None:
    """Replies come back where every service may publish: one is taken only as a reply,
    signed with the key of the service that was asked; each other way is refused and
    counted with its reason."""
    verifier = load_verifier(keys, "replies")
    vote, proposal = load_signer(keys, "vote"), load_signer(keys, "proposal")
    answered = [("ballot-1", {"ok": True, "data": {"sequence": 1}})]
    good = vote.sign(batch_reply("vote", answered))
    assert verifier.answer(good, "vote", BATCH_REPLY_TYPE) is good
    rpc = signed_reply(proposal, "request-1", {"ok": True, "data": {}})
    assert (rpc["in_reply_to"], rpc["reply"]) == ("request-1", {"ok": True, "data": {}})
    assert verifier.answer(rpc, "proposal", REPLY_TYPE) is rpc

    def refused_as(raw: Any, producer: str, msg_type: str) -> str:
        with pytest.raises(Refused) as refused:
            verifier.answer(raw, producer, msg_type)
        return refused.value.reason

    cases = {
        "not_a_reply": (json.loads(json.dumps(answered)), "vote", BATCH_REPLY_TYPE),
        "wrong_producer": (proposal.sign(batch_reply("proposal", answered)), "vote",
                           BATCH_REPLY_TYPE),
        "bad_signature": ({**good, "replies": [["ballot-1", {"ok": False}]]}, "vote",
                          BATCH_REPLY_TYPE),
        "unsigned": (batch_reply("vote", answered), "vote", BATCH_REPLY_TYPE),
    }
    for why, (raw, producer, msg_type) in cases.items():
        counter = MESSAGES_REFUSED.labels("replies", why)
        before = counter._value.get()
        assert refused_as(raw, producer, msg_type) == why
        assert counter._value.get() == before + 1, why
    # A reply is no other kind of reply, and no envelope a consumer would act on.
    assert refused_as(rpc, "proposal", BATCH_REPLY_TYPE) == "not_a_reply"
    assert refused_as(good, "vote", REPLY_TYPE) == "not_a_reply"
    assert REPLY_TYPE not in REGISTRY and BATCH_REPLY_TYPE not in REGISTRY
    # Signed by the vote service with a key claimed for another: refused by key name.
    assert refused_as({**vote.sign(batch_reply("vote", answered)), "producer": "tally"},
                      "tally", BATCH_REPLY_TYPE) == "wrong_producer"


def test_a_replay_is_admitted_and_counted_as_a_repeat_not_a_refusal(keys: Path) -> None:
    """A signed message seen again (a redelivery, or someone replaying what they
    captured) has no second effect (the consumers are idempotent on what it carries):
    admitted, no alarm, counted, for as long as the consumer remembers its id."""
    verifier = load_verifier(keys, "replays")
    verifier.seen = RecentIds(2)
    repeated = MESSAGES_REPEATED.labels("replays", PollClosed.TYPE)
    refusals = MESSAGES_REFUSED.labels("replays", "unsigned")
    before, refused_before = repeated._value.get(), refusals._value.get()
    signer = load_signer(keys, "proposal")
    first, second, third = (signer.sign(closed()) for _ in range(3))
    assert len({first["id"], second["id"], third["id"]}) == 3
    verifier.check(first)
    verifier.check(second)
    assert repeated._value.get() == before  # each new
    verifier.check(first)  # the replay: admitted ...
    assert repeated._value.get() == before + 1  # ... and counted
    verifier.check(third)  # three ids: the oldest (second) is forgotten
    verifier.check(second)
    assert repeated._value.get() == before + 1
    assert refusals._value.get() == refused_before  # no refusal, no alarm


def test_commands_come_from_the_gateway_events_from_their_producer(keys: Path,
                                                                   verifier: Verifier) -> None:
    assert allowed("poll.get.v1", "gateway") and not allowed("poll.get.v1", "vote")
    assert allowed("poll.closed.v1", "proposal") and not allowed("poll.closed.v1", "tally")
    assert allowed("something.new.v9", "vote")  # unknown types: the consumer's to refuse
    # The timers' commands come from no one on the broker, the gateway included: a
    # schedule run or a tally check on demand would be anyone's lever on the timing.
    for timed in ("poll.run_schedule.v1", "tally.check_polls.v1", "identity.purge_expired.v1",
                  "vote.purge_ballots.v1"):
        assert not any(allowed(timed, sender) for sender in
                       ("gateway", "identity", "proposal", "vote", "tally")), timed
    verifier.check(load_signer(keys, "gateway").sign(wrap(GetPoll(poll_id="p1"), "gateway")))
    assert reason(verifier, load_signer(keys, "vote").sign(
        wrap(GetPoll(poll_id="p1"), "vote"))) == "not_allowed"


def test_a_signer_signs_only_under_its_own_name(keys: Path) -> None:
    with pytest.raises(ValueError, match="may not sign"):
        load_signer(keys, "gateway").sign(closed("proposal"))


def test_the_signature_covers_members_a_reader_does_not_know(keys: Path,
                                                            verifier: Verifier) -> None:
    # A newer producer adds an optional member: an older reader still verifies it.
    verifier.check(load_signer(keys, "proposal").sign({**closed(), "priority": "high"}))


def test_signing_is_deterministic_so_a_message_sent_again_is_byte_identical(
        keys: Path) -> None:
    signer, raw = load_signer(keys, "proposal"), closed()
    assert signer.sign(raw) == signer.sign(signer.sign(raw))


NAMES = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 53) + 1, max_value=2 ** 53 - 1)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=8)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.dictionaries(NAMES, JSON, max_size=4))
def test_the_signed_bytes_are_rfc8785(payload: dict[str, Any]) -> None:
    """What an auditor re-implements: the prefix and the RFC 8785 form of the envelope
    without its signature, checked against an independent implementation."""
    raw = {"id": "e", "type": "t.v1", "producer": "vote", "payload": payload,
           SIGNATURE: {"kid": "k", "sig": "s"}}
    body = {k: v for k, v in raw.items() if k != SIGNATURE}
    assert signed_bytes(raw) == SIGNED_PREFIX + rfc8785.dumps(body)


def test_no_contract_carries_a_floating_point_number() -> None:
    """Why json.dumps is RFC 8785 here: the two differ only on floats (and on member
    names beyond the BMP, which no contract has)."""
    def numbers(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = ["number"] if node.get("type") == "number" or (
                isinstance(node.get("type"), list) and "number" in node["type"]) else []
            return found + [n for v in node.values() for n in numbers(v)]
        if isinstance(node, list):
            return [n for v in node for n in numbers(v)]
        return []
    for name, schema in export().items():
        assert numbers(schema) == [], name
