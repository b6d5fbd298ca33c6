"""Signed envelopes (distributed profile): who sent a message, and may they send it.

Whoever can publish to RabbitMQ could otherwise write any ``producer`` in an envelope.
Each process role signs what it publishes with its service's Ed25519 key
(``envelope-<service>`` in ``URNE_KEYS_DIR``), and each consumer checks, before the
message reaches a core, that the signature is good, that the key is the named
producer's, and that this producer may send this type: an event only by the service
that owns it (``Event.PRODUCER``), a command only by its ``Command.SENDERS``.

The signature is a member of the envelope::

    "signature": {"kid": "<key id>", "sig": "<base64url, unpadded>"}

over ``SIGNED_PREFIX`` followed by the envelope *without* its ``signature`` member as
RFC 8785 canonical JSON (members sorted, no whitespace, UTF-8). Envelopes carry no
floating-point numbers (a test checks every contract schema), and for strings,
integers, booleans, null, arrays and objects with ASCII member names, Python's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes exactly
the RFC 8785 bytes, and so does ``orjson`` with sorted keys, which writes them here
(``urne.platform.jsonbytes.canonical``: about ten times faster; tests check the bytes
against the ``rfc8785`` package and the two writers against each other).
The signature covers every member, known or not, so a reader tolerant of new optional
fields still verifies what was sent. Ed25519 is the only algorithm: there is no ``alg``
member to choose another.

A replayed envelope verifies (it is the same message): consumers are idempotent on
what it carries (an event's effect, a ballot's id), so it has no second effect.

Replies are signed the same way. An RPC reply, and a vote worker's batch of receipts,
come back on the asker's reply queue through ``nameko-rpc``, where every service and
every vote worker may publish; signed, each names its answerer, an RPC reply names the
request it answers (``in_reply_to``, the request envelope's id), and the gateway takes
an answer only from the service it asked (``Verifier.answer``). A vote worker's batch
carries each receipt beside its ballot's correlation id, which is the ballot envelope's
id, so a receipt cannot be moved to another ballot either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from urne.contracts.envelope import REGISTRY, Command, Event
from urne.crypto.keys import (
    ENVELOPE_KEY_NAMES,
    KeySet,
    PublicKey,
    SigningKey,
    b64url,
    b64url_decode,
    load_key_set,
    load_signing_key,
)
from urne.platform import jsonbytes
from urne.platform.metrics import MESSAGES_REFUSED, MESSAGES_REPEATED

SIGNED_PREFIX = b"urne-envelope-v1\n"  # a signature made for an envelope means nothing else
SIGNATURE = "signature"
KEY_PREFIX = "envelope-"
# The roles that sign what they publish (ENVELOPE_KEY_NAMES): the gateway (commands and
# ballots) and the four services (their events; a vote worker signs with its service's
# key).


def signed_bytes(raw: dict[str, Any]) -> bytes:
    body = {k: v for k, v in raw.items() if k != SIGNATURE}
    return SIGNED_PREFIX + jsonbytes.canonical(body)


# Signed with a key this consumer does not hold (yet: a key rotated, the consumer not
# restarted), as opposed to a wrong or forged signature.
UNKNOWN_KEY = "unknown_key"


class Refused(Exception):
    """A message its consumer does not take: ``reason`` is a stable word."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Signer:
    producer: str
    key: SigningKey
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", self.key.public.kid)

    def sign(self, raw: dict[str, Any]) -> dict[str, Any]:
        """``raw`` with its signature (a new dict; a signature already there is replaced)."""
        if raw.get("producer") != self.producer:
            raise ValueError(f"{self.producer} may not sign for {raw.get('producer')!r}")
        sig = b64url(self.key.sign(signed_bytes(raw)))
        return {**{k: v for k, v in raw.items() if k != SIGNATURE},
                SIGNATURE: {"kid": self.kid, "sig": sig}}


# What a reply is (not envelopes: they are no message type any consumer takes).
REPLY_TYPE = "urne.reply.v1"  # {type, producer, in_reply_to, reply}: one RPC reply
BATCH_REPLY_TYPE = "urne.replies.v1"  # {type, producer, replies: [[correlation id, reply]]}


def signed_reply(signer: Signer, in_reply_to: Any, reply: dict[str, Any]) -> dict[str, Any]:
    """An RPC reply as its service sends it: ``reply`` with who answers, and to what."""
    return signer.sign({"type": REPLY_TYPE, "producer": signer.producer,
                        "in_reply_to": in_reply_to if isinstance(in_reply_to, str) else None,
                        "reply": reply})


def batch_reply(producer: str, answered: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A vote worker's replies to one gateway for one batch, to be signed once together."""
    return {"type": BATCH_REPLY_TYPE, "producer": producer, "replies": answered}


def allowed(msg_type: str, producer: str) -> bool:
    cls = REGISTRY.get(msg_type)
    if cls is None:
        return True  # not ours to refuse: the consumer answers unknown_message_type
    if issubclass(cls, Event):
        return producer == cls.PRODUCER
    if issubclass(cls, Command):
        return producer in cls.SENDERS
    return False


# How many envelope ids a consumer remembers, to count what it sees again: some 40 s
# of a vote worker's ballots at 400/s, hours of a service's events; about 2.5 MB (the
# ids and the ordered dict, measured with tracemalloc).
REMEMBERED_IDS = 16_384


@dataclass
class RecentIds:
    """The last ``size`` ids added (a bounded, thread-safe LRU)."""

    size: int = REMEMBERED_IDS
    _ids: OrderedDict[str, None] = field(default_factory=OrderedDict, repr=False,
                                         compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, item: str) -> bool:
        """Add ``item`` (as the newest); True if it was there already."""
        with self._lock:
            if item in self._ids:
                self._ids.move_to_end(item)
                return True
            self._ids[item] = None
            if len(self._ids) > self.size:
                self._ids.popitem(last=False)
            return False

    def __contains__(self, item: object) -> bool:
        with self._lock:
            return item in self._ids


@dataclass
class Verifier:
    """Checks envelopes against the producers' public keys, selected by ``kid``; counts
    the admitted ones it has seen before (``urne_messages_repeated_total``)."""

    keys: dict[str, PublicKey]  # kid -> the key, named envelope-<producer>
    consumer: str  # for the refusals' metric
    revoked: frozenset[str] = frozenset()  # kids withdrawn (urne keys revoke)
    seen: RecentIds = field(default_factory=RecentIds, repr=False, compare=False)

    @classmethod
    def of_sets(cls, sets: Iterable[KeySet], consumer: str) -> Verifier:
        """Current and retired keys are trusted (a message signed just before a
        rotation still arrives); revoked ones are refused by name."""
        sets = list(sets)
        return cls({k.kid: k for s in sets for k, status in s.keys if status != "revoked"},
                   consumer, frozenset(k.kid for s in sets for k, status in s.keys
                                       if status == "revoked"))

    def check(self, raw: Any) -> None:
        """Raises ``Refused`` (counted) unless ``raw`` is signed by its producer, who may
        send its type."""
        try:
            self._check(raw)
        except Refused as exc:
            MESSAGES_REFUSED.labels(self.consumer, exc.reason).inc()
            raise
        self._remember(raw)

    def _remember(self, raw: dict[str, Any]) -> None:
        """A replay (or a redelivery) of a signed message is admitted: the consumers
        are idempotent on what it carries, so it has no second effect and is no alarm.
        It is counted, for as long as this process remembers the envelope's id."""
        envelope_id = raw.get("id")
        if isinstance(envelope_id, str) and self.seen.add(envelope_id):
            msg_type = str(raw.get("type"))
            MESSAGES_REPEATED.labels(self.consumer,
                                     msg_type if msg_type in REGISTRY else "other").inc()

    def _check(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise Refused("unreadable", "not a JSON object")
        signature = raw.get(SIGNATURE)
        if not isinstance(signature, dict):
            raise Refused("unsigned", "the envelope carries no signature")
        producer, msg_type, kid = raw.get("producer"), raw.get("type"), str(signature.get("kid"))
        if kid in self.revoked:
            raise Refused("revoked_key", f"key {kid[:40]!r} is revoked")
        key = self.keys.get(kid)
        if key is None:
            raise Refused(UNKNOWN_KEY, f"no key {kid[:40]!r}")
        if key.name != f"{KEY_PREFIX}{producer}":
            raise Refused("wrong_producer",
                          f"signed with {key.name}, not the key of {str(producer)[:40]!r}")
        try:
            good = key.verify(b64url_decode(str(signature.get("sig"))), signed_bytes(raw))
        except ValueError:  # not base64
            good = False
        if not good:
            raise Refused("bad_signature", "the signature does not match")
        if not allowed(str(msg_type), str(producer)):
            raise Refused("not_allowed", f"{producer} may not send {str(msg_type)[:80]}")

    def answer(self, raw: Any, producer: str, msg_type: str) -> dict[str, Any]:
        """``raw`` if it is a reply of ``msg_type`` signed by ``producer``'s key, else
        ``Refused`` (counted)."""
        if not isinstance(raw, dict) or raw.get("type") != msg_type:
            MESSAGES_REFUSED.labels(self.consumer, "not_a_reply").inc()
            raise Refused("not_a_reply", f"expected a signed {msg_type}")
        if raw.get("producer") != producer:
            MESSAGES_REFUSED.labels(self.consumer, "wrong_producer").inc()
            raise Refused("wrong_producer", f"{str(raw.get('producer'))[:40]!r} answered "
                                            f"for {producer!r}")
        self.check(raw)
        return raw

    def admit(self, raw: Any) -> str | None:
        """None if ``raw`` passes, else why not (counted)."""
        try:
            self.check(raw)
        except Refused as exc:
            return str(exc)
        return None


def load_signer(keys_dir: Path, producer: str) -> Signer:
    return Signer(producer, load_signing_key(keys_dir, f"{KEY_PREFIX}{producer}"))


def load_verifier(keys_dir: Path, consumer: str) -> Verifier:
    return Verifier.of_sets((load_key_set(keys_dir, name) for name in ENVELOPE_KEY_NAMES),
                            consumer)
