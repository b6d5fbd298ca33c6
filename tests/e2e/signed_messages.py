"""Signed envelopes on the real broker (issue 10): whoever holds a role's broker
credentials but not its key cannot speak for it, and a message sent again has no second
effect.

The test plays an attacker with broker credentials: it publishes a forged
``poll.closed`` (unsigned; signed with another role's key; signed and then altered)
with the proposal service's own broker user, an unsigned command and an unsigned
ballot with the gateway's. Every consumer refuses them, counts them and parks them
with their reason; the poll stays open. Then it replays what a legitimate sender sent
(a signed ballot twice, the real ``poll.closed`` after publication): the same receipt;
the replayed close counted as seen again and passed over by each consumer that had
handled it (its handler not run again), the same signed result, and no alarm.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pika

from tests.e2e.scenario import bearer, open_poll, vote, voting_token, wait_until
from urne.contracts import wrap
from urne.contracts.commands import CastBallot, GetPoll
from urne.contracts.events import PollClosed
from urne.contracts.ids import new_ballot_id, new_tracker
from urne.crypto.keys import IDENTITY_TOKEN_KEY, b64url, load_public_key
from urne.crypto.tokens import TokenVerifier
from urne.messaging.amqp_rpc import AmqpRpcClient
from urne.messaging.signatures import SIGNATURE, load_signer, load_verifier, signed_bytes

YES = {"method": "yes_no_abstain", "answer": "yes"}
REFUSING = ("identity", "vote", "tally")  # each takes poll.closed.v1


@dataclass
class System:
    base: str
    outbox: Path
    keys: Path
    admin_url: str  # guest: the tests' own administration of the vhost
    proposal_url: str  # the proposal service's broker user
    gateway_url: str  # the gateway's broker user
    metrics: Callable[[str], str]  # service -> its /metrics text
    dead_letters: Callable[[], list[dict[str, Any]]]  # drains the dead-letter queue


def refused(metrics: str, reason: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("urne_messages_refused_total{") and f'reason="{reason}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def repeated(metrics: str, msg_type: str) -> float:
    """Signed messages a consumer admitted again (a replay or a redelivery), of a type."""
    for line in metrics.splitlines():
        if line.startswith("urne_messages_repeated_total{") and f'type="{msg_type}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def handled(metrics: str) -> float:
    """poll.closed events a service took without error."""
    for line in metrics.splitlines():
        if line.startswith("urne_events_handled_total{") and PollClosed.TYPE in line \
                and 'outcome="ok"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def publish(url: str, exchange: str, key: str, envelope: dict[str, Any]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, key, json.dumps(envelope).encode(),
                              pika.BasicProperties(content_type="application/json",
                                                   delivery_mode=2))
    finally:
        connection.close()


def run_signed_messages(system: System) -> None:
    http = httpx.Client(base_url=system.base, timeout=15)
    state = open_poll(http, system.outbox)
    vote(http, system.outbox, state, "ada@example.org", "yes")
    token = voting_token(http, system.outbox, state, "bea@example.org")
    voter_key = TokenVerifier(load_public_key(system.keys, IDENTITY_TOKEN_KEY)
                              ).voting(token).voter_key
    before = {s: system.metrics(s) for s in (*REFUSING, "proposal")}

    # 1. Forged closes, with the proposal service's broker user but not its key.
    forged = wrap(PollClosed(poll_id=state.poll_id, closed_at=datetime.now(UTC)), "proposal")
    gateway_key = load_signer(system.keys, "gateway")
    wrong_key = {**forged, SIGNATURE: {"kid": gateway_key.kid, "sig": b64url(
        gateway_key.key.sign(signed_bytes(forged)))}}
    altered = {**load_signer(system.keys, "proposal").sign(forged), "trace_id": uuid.uuid4().hex}
    for envelope in (forged, wrong_key, altered):
        publish(system.proposal_url, "proposal.events", PollClosed.TYPE, envelope)

    # 2. An unsigned command and an unsigned ballot with the gateway's broker user; then
    # a signed ballot sent twice (a replay).
    ballot = wrap(CastBallot(poll_id=state.poll_id, voting_token=token, choice={"answer": "no"},
                             ballot_id=new_ballot_id(), tracker=new_tracker(),
                             received_at=datetime.now(UTC)), "gateway")

    async def over_the_broker() -> tuple[dict, dict, dict, dict]:
        replies = load_verifier(system.keys, "gateway")
        unsigned = AmqpRpcClient(system.gateway_url, replies)
        signed = AmqpRpcClient(system.gateway_url, replies, gateway_key.sign)
        await unsigned.connect()
        await signed.connect()
        try:
            return (await unsigned.call("proposal", wrap(GetPoll(poll_id=state.poll_id),
                                                         "gateway"), 15),
                    await unsigned.cast(ballot, voter_key, 15),
                    await signed.cast(ballot, voter_key, 15),
                    await signed.cast(ballot, voter_key, 15))
        finally:
            await unsigned.close()
            await signed.close()

    command, unsigned_ballot, first, again = asyncio.run(over_the_broker())
    for reply in (command, unsigned_ballot):
        assert not reply["ok"] and reply["error"]["code"] == "message_refused", reply
        assert reply["error"]["status"] == 403 and "unsigned" in reply["error"]["detail"]
    assert first["ok"] and again == first, (first, again)  # one ballot, one receipt
    assert first["data"]["ballot_id"] == ballot["payload"]["ballot_id"]

    # Every consumer of poll.closed refused the three forgeries, and counted them.
    after: dict[str, str] = {}

    def counted() -> bool:
        after.update({s: system.metrics(s) for s in (*REFUSING, "proposal")})
        return all(refused(after[s], reason) - refused(before[s], reason) == 1
                   for s in REFUSING for reason in ("unsigned", "wrong_producer",
                                                    "bad_signature"))
    assert wait_until(counted, timeout=30), {s: [
        line for line in after[s].splitlines() if "refused" in line] for s in after}
    assert refused(after["proposal"], "unsigned") - refused(before["proposal"], "unsigned") == 1

    # Parked, each with its reason: 3 forgeries x 3 consumers, the command, the ballot.
    def of_this_poll() -> list[dict[str, Any]]:
        return [p for p in system.dead_letters()
                if (p.get("envelope") or {}).get("payload", {}).get("poll_id") == state.poll_id]

    parked: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(parked) < 11 and time.monotonic() < deadline:
        parked += of_this_poll()
        time.sleep(0.2)
    reasons = sorted((p["service"], p["reason"]) for p in parked)
    assert reasons == sorted(
        [(s, r) for s in REFUSING for r in ("bad_signature", "unsigned", "wrong_producer")]
        + [("proposal", "unsigned"), ("vote", "unsigned")]), reasons
    assert all(p["error_type"] == "Refused" and p["attempts"] == 1 for p in parked)

    # The poll is still open: the forged closes changed nothing.
    assert http.get(f"/v1/polls/{state.poll_id}").json()["status"] == "open"
    r = http.post(f"/v1/polls/{state.poll_id}/ballots", headers=bearer(token),
                  json={"choice": YES})
    assert r.status_code == 201 and r.json()["sequence"] == 2, r.text  # after the replayed one

    # 3. Closed for real, published; the real poll.closed sent again has no second effect.
    # Captured from now on (the forgeries went before), to be sent again.
    capture = pika.BlockingConnection(pika.URLParameters(system.admin_url))
    channel = capture.channel()
    captured = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(captured, "proposal.events", PollClosed.TYPE)

    assert http.post(f"/v1/polls/{state.poll_id}/close", headers=state.organiser
                     ).status_code == 200
    assert wait_until(lambda: http.get(f"/v1/polls/{state.poll_id}/results").status_code
                      == 200, timeout=60)
    summary = http.get(f"/v1/polls/{state.poll_id}/results").json()
    assert summary["tally"]["counts"] == {"yes": 2, "no": 0, "abstain": 0}
    published = http.get(f"/v1/audit/polls/{state.poll_id}/result").json()
    method, _, body = channel.basic_get(captured, auto_ack=True)
    assert method is not None, "the real poll.closed was not captured"
    real = json.loads(body)
    assert real[SIGNATURE]["kid"] == load_signer(system.keys, "proposal").kid
    mid = {s: handled(system.metrics(s)) for s in REFUSING}
    seen = {s: repeated(system.metrics(s), PollClosed.TYPE) for s in REFUSING}
    publish(system.proposal_url, "proposal.events", PollClosed.TYPE, real)
    # Counted as what it is, a message seen again, by every consumer it reached ...
    assert wait_until(lambda: {s: repeated(system.metrics(s), PollClosed.TYPE) - seen[s]
                               for s in REFUSING} == {s: 1.0 for s in REFUSING},
                      timeout=30), "the replayed poll.closed was not seen by all three"
    # ... and refused by each, which had handled it to the end: its handler not run again.
    assert {s: handled(system.metrics(s)) for s in REFUSING} == mid
    assert http.get(f"/v1/audit/polls/{state.poll_id}/result").json() == published
    for s in REFUSING:
        final = system.metrics(s)
        for reason in ("unsigned", "wrong_producer", "bad_signature", "unknown_key",
                       "not_allowed"):
            assert refused(final, reason) == refused(after[s], reason), (s, reason)
    assert of_this_poll() == []  # no alarm
    capture.close()
    http.close()
