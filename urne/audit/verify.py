"""Re-check a published result from its public documents alone (``urne audit verify``).

Pure: it takes the documents the audit routes serve (``/v1/audit/keys``, and for the
poll ``/rules``, ``/record``, ``/result``, and a tracker's inclusion proof) and answers,
check by check, whether they agree. It trusts none of them: the signature is checked
with the key whose id the auditor pins (or, failing that, the one served, which only
proves the documents agree with each other), the rules hash, the Merkle root and the
tally are recomputed here, with the counting auditors share (``urne.counting``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from urne.counting import InvalidBallot, TallyError, count, validate_recorded
from urne.counting.rules import rules_adapter, rules_hash
from urne.crypto.keys import TALLY_RESULT_KEY, b64url_decode
from urne.record import log, merkle
from urne.record.canonical import canonical_json

V1 = "urne.result.v1"  # a record of counted ballots, {tracker, choice}, in tracker order
V2 = "urne.result.v2"  # a record that is the log of every ballot (urne.record.log)
TREE_HEAD = "urne.tree_head.v1"
IN_PERSON_CHANNELS = ("desk", "paper")  # the channels whose ballots an agent casts
AGENT_KEY = re.compile(r"[0-9a-f]{32}")  # an agent's name in the reconciliation


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Documents:
    """The public documents of one poll, as served."""

    keys: dict[str, Any]  # /v1/audit/keys
    rules: dict[str, Any]  # /v1/audit/polls/{id}/rules
    # /v1/audit/polls/{id}/record.ndjson: its entries, and the size and root its headers
    # give (or every page of /record).
    record: dict[str, Any]
    signed: dict[str, Any]  # /v1/audit/polls/{id}/result
    proof: dict[str, Any] | None = None  # /v1/audit/polls/{id}/trackers/{tracker}
    # /v1/audit/polls/{id}/heads (its ``heads``), and heads the auditor saved earlier.
    heads: list[dict[str, Any]] | None = None
    saved_heads: list[dict[str, Any]] | None = None
    # The leaf hash of each record entry, if the loader computed them from the lines
    # as served (the same hashes, found faster: ``bundle.entries``); else computed here.
    leaves: list[bytes] | None = None

    def leaf_hashes(self) -> list[bytes]:
        entries = self.record.get("entries", [])
        if self.leaves is not None and len(self.leaves) == len(entries):
            return self.leaves
        return [log.leaf(e) for e in entries]


def verify(docs: Documents, pinned_kid: str | None = None) -> list[Check]:
    """Every check, in order; the result holds only if all are ``ok``."""
    result = docs.signed.get("result", {})
    leaves: list[bytes] = []
    try:
        leaves = docs.leaf_hashes()
        record = _record(docs, result, leaves)
    except (ValueError, TypeError) as exc:  # an entry canonical JSON cannot write
        record = Check("record", False, f"an entry is not JSON urne writes: {exc}"[:300])
    checks = [_signature(docs, result, pinned_kid), _rules(docs, result), record,
              _tally(docs, result)]
    if docs.heads or docs.saved_heads:  # none signed during the vote: nothing to check
        checks.append(_heads(docs, result, pinned_kid, leaves))
    if docs.proof is not None:
        checks.append(_inclusion(docs))
    return checks


def signed_by(keys: dict[str, Any], signed: dict[str, Any], document: Any,
               pinned_kid: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """Why ``signed`` (with ``signature`` and ``key_id``) is not a signature of
    ``document`` by a tally-result key, or None and the key."""
    kid = signed.get("key_id")
    if pinned_kid is not None and kid != pinned_kid:
        return f"signed with key {kid}, not the pinned {pinned_kid}", None
    key = next((k for k in keys.get("keys", [])
                if k.get("kid") == kid and k.get("name") == TALLY_RESULT_KEY), None)
    if key is None:
        return f"no {TALLY_RESULT_KEY} key with id {kid}", None
    if key.get("status") == "revoked":
        return f"key {kid} is revoked: what it signed is not to be trusted", None
    try:
        # The JWK's x (RFC 8037); public_key, the same bytes, from servers before it.
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(key.get("x")
                                                                  or key["public_key"]))
        public.verify(b64url_decode(signed["signature"]), canonical_json(document))
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        return f"the signature does not verify ({type(exc).__name__})", None
    return None, key


def _signature(docs: Documents, result: dict[str, Any], pinned_kid: str | None) -> Check:
    wrong, key = signed_by(docs.keys, docs.signed, result, pinned_kid)
    if wrong is not None or key is None:
        return Check("signature", False, str(wrong))
    pinned = "pinned" if pinned_kid else "as served, not pinned"
    status = key.get("status", "current")
    return Check("signature", True, f"Ed25519 signature by key {key['kid']} ({status}, "
                                    f"{pinned})")


def _heads(docs: Documents, result: dict[str, Any], pinned_kid: str | None,
           leaves: list[bytes]) -> Check:
    """Every tree head signed during the vote (served, and saved earlier by the
    auditor) is signed by the tally, of this poll and rules, at a size the result lists,
    with the root of the record's prefix of that size: the record published at the close
    extends every head, so nothing logged before a head was deleted or rewritten."""
    if result.get("format") != V2:
        return Check("heads", False, "a result of urne.result.v1 has no tree heads")
    sizes = set(result.get("record", {}).get("heads", []))
    heads = [*(docs.heads or []), *(docs.saved_heads or [])]
    try:
        roots = merkle.prefix_roots(leaves,
                                    [int(h["head"]["size"]) for h in heads])
    except (KeyError, TypeError, ValueError) as exc:
        return Check("heads", False, f"a tree head does not read: {exc}"[:300])
    for signed in heads:
        head = signed["head"]
        wrong, _ = signed_by(docs.keys, signed, head, pinned_kid)
        where = f"the tree head at {head.get('size')} entries"
        if wrong is not None:
            return Check("heads", False, f"{where}: {wrong}")
        if head.get("format") != TREE_HEAD or \
                (head.get("poll_id"), head.get("rules_hash")) != (result.get("poll_id"),
                                                                  result.get("rules_hash")):
            return Check("heads", False, f"{where} is not one of this poll and rules")
        if head["size"] not in sizes:
            return Check("heads", False, f"{where} is not among the intervals the result "
                         "signs: the log was rewritten after it")
        if roots.get(int(head["size"]), b"").hex() != head.get("root"):
            return Check("heads", False, f"{where} has root {head.get('root')}; the "
                         "record's first entries have another: the log was rewritten "
                         "after it was signed")
    saved = f", {len(docs.saved_heads)} saved earlier" if docs.saved_heads else ""
    return Check("heads", True, f"{len(docs.heads or [])} tree head(s) served{saved}: "
                 "the record extends each")


def _rules(docs: Documents, result: dict[str, Any]) -> Check:
    try:
        frozen = rules_adapter.validate_python(docs.rules["rules"])
    except (ValidationError, KeyError) as exc:
        return Check("rules", False, f"the rules do not read: {exc}"[:300])
    computed = rules_hash(frozen)
    if computed != docs.rules.get("rules_hash") or computed != result.get("rules_hash"):
        return Check("rules", False, f"rules hash {computed} differs from the served "
                     f"{docs.rules.get('rules_hash')} or the signed {result.get('rules_hash')}")
    return Check("rules", True, f"rules hash {computed}")


def _record(docs: Documents, result: dict[str, Any], leaves: list[bytes]) -> Check:
    if result.get("format") != V1:
        return _log(docs, result, leaves)
    entries = docs.record.get("entries", [])
    trackers = [e.get("tracker") if isinstance(e, dict) else None for e in entries]
    for index in range(1, len(trackers)):
        before, after = trackers[index - 1], trackers[index]
        if not (isinstance(before, str) and isinstance(after, str)):
            continue  # not an entry: the tally check names it
        if before == after:
            return Check("record", False, f"tracker {after} appears twice (entries "
                         f"{index - 1} and {index}): one ballot counted twice")
        if before > after:
            return Check("record", False, f"entries {index - 1} and {index} are not in "
                         f"tracker order ({before}, {after}): the record was reordered")
    root = merkle.root(leaves).hex()
    signed = result.get("record", {})
    if (root, len(leaves)) != (signed.get("root"), signed.get("size")) or \
            (root, len(leaves)) != (docs.record.get("root"), docs.record.get("size")):
        return Check("record", False, f"{len(leaves)} entries with root {root}; signed: "
                     f"{signed.get('size')} with {signed.get('root')}")
    return Check("record", True, f"{len(leaves)} counted ballots, Merkle root {root}")


def _log(docs: Documents, result: dict[str, Any], leaves: list[bytes]) -> Check:
    """v2: the record is a well-formed log (heights, chain from the rules hash, tracker
    order within each tree head's interval, unique trackers, each ``supersedes`` naming
    another entry, none twice), whose root and size are those signed and served."""
    if result.get("format") != V2:
        return Check("record", False, f"unknown result format {result.get('format')!r}")
    entries = docs.record.get("entries", [])
    signed = result.get("record", {})
    heads = signed.get("heads")
    if not isinstance(heads, list) or not all(isinstance(h, int) for h in heads):
        return Check("record", False, "the signed record lists no tree head sizes")
    wrong = log.check(entries, str(result.get("rules_hash")), heads, leaves)
    if wrong is not None:
        return Check("record", False, wrong)
    root = merkle.root(leaves).hex()
    if (root, len(entries)) != (signed.get("root"), signed.get("size")) or \
            (root, len(entries)) != (docs.record.get("root"), docs.record.get("size")):
        return Check("record", False, f"{len(entries)} entries with root {root}; signed: "
                     f"{signed.get('size')} with {signed.get('root')}")
    return Check("record", True, f"a log of {len(entries)} ballots in {len(heads)} "
                 f"interval(s), Merkle root {root}")


def _tally(docs: Documents, result: dict[str, Any]) -> Check:
    if result.get("format") != V1:
        return _log_tally(docs, result)
    try:
        frozen = rules_adapter.validate_python(docs.rules["rules"])
        entries = docs.record.get("entries", [])
        for index, entry in enumerate(entries):
            # Exactly a tracker and a choice in its recorded form: an entry the tally
            # would not have written is refused, even if it would count the same.
            if not isinstance(entry, dict) or set(entry) != {"tracker", "choice"}:
                return Check("tally", False, f"entry {index} is not {{tracker, choice}}")
            try:
                validate_recorded(frozen, entry["choice"])
            except InvalidBallot as exc:
                return Check("tally", False, f"entry {index} (tracker {entry['tracker']}) "
                             f"is not a valid recorded choice: {exc}"[:300])
        recount = count(frozen, [e["choice"] for e in entries])
    except (ValidationError, InvalidBallot, TallyError, KeyError, TypeError, ValueError) as exc:
        return Check("tally", False, f"the record does not count: {exc}"[:300])
    if recount != result.get("tally"):
        return Check("tally", False, "counting the record's choices with the frozen rules "
                     f"gives {recount}, the signed tally is {result.get('tally')}")
    return Check("tally", True, "the record's choices, counted with the frozen rules, give "
                 "the signed tally")


def _log_tally(docs: Documents, result: dict[str, Any]) -> Check:
    """v2: every entry holds a choice the rules allow (replaced ones too); the entries no
    other replaces, counted with the frozen rules, give the signed tally; and the
    reconciliation's numbers are the record's."""
    entries = docs.record.get("entries", [])
    try:
        frozen = rules_adapter.validate_python(docs.rules["rules"])
        for index, entry in enumerate(entries):
            try:
                validate_recorded(frozen, entry["choice"])
            except InvalidBallot as exc:
                return Check("tally", False, f"entry {index} (tracker {entry['tracker']}) "
                             f"is not a valid recorded choice: {exc}"[:300])
        counting = log.counted(entries)
        recount = count(frozen, [e["choice"] for e in counting])
        channels = log.channels(entries)
    except (ValidationError, InvalidBallot, TallyError, KeyError, TypeError, ValueError) as exc:
        return Check("tally", False, f"the record does not count: {exc}"[:300])
    if recount != result.get("tally"):
        return Check("tally", False, "counting the record's latest ballots with the frozen "
                     f"rules gives {recount}, the signed tally is {result.get('tally')}")
    numbers = {"ballots_received": len(entries), "ballots_counted": len(counting)}
    signed_numbers = {k: result.get(k) for k in numbers}
    if numbers != signed_numbers:
        return Check("tally", False, f"the record holds {numbers}, the result signs "
                     f"{signed_numbers}")
    signed_channels = result.get("reconciliation", {}).get("channels")
    if channels != signed_channels:
        return Check("tally", False, f"the record's ballots by channel are {channels}, the "
                     f"result signs {signed_channels}")
    reconciliation = result.get("reconciliation", {})
    wrong = _agents(reconciliation, channels) or _electorate(
        reconciliation, len(counting), docs.rules.get("electorate", "open"))
    if wrong is not None:
        return Check("tally", False, wrong)
    eligible = reconciliation.get("eligible")
    return Check("tally", True, f"the {len(counting)} latest ballots of the record, counted "
                 "with the frozen rules, give the signed tally; ballots by channel agree"
                 + (f"; {len(counting)} voters of {eligible} eligible people"
                    if eligible is not None else ""))


def _electorate(reconciliation: dict[str, Any], counted: int, electorate: str) -> str | None:
    """Why the signed voters and eligible people cannot be the record's and the rules',
    or None: a census poll signs its eligible people, at least as many as its voters,
    one per counted entry; a poll open to all signs neither (its voters are
    ``ballots_counted``)."""
    if electorate != "census":
        return None if "eligible" not in reconciliation and "voters" not in reconciliation \
            else "the result signs eligible people and voters for a poll open to all"
    voters, eligible = reconciliation.get("voters"), reconciliation.get("eligible")
    if not _whole(eligible):
        return "a census poll's result must sign its number of eligible people"
    if voters != counted:
        return f"the result signs {voters} voters, the record counts {counted} ballots " \
               "(one per voter)"
    if counted > eligible:
        return f"the result signs more voters ({voters}) than eligible people ({eligible})"
    return None


def _agents(reconciliation: dict[str, Any], channels: dict[str, dict[str, int]]
            ) -> str | None:
    """Why the signed ballots by agent cannot be the record's, or None: each agent's
    published cells are {entries, counted} of a channel with ballots cast at a desk or
    entered from paper, each of at least ``min_cell`` entries; the smaller ones are
    pooled per channel ({agents, entries, counted}, each pooled agent fewer than
    ``min_cell``); and no channel's agents, pooled or not, hold more ballots than the
    record has in it. (The record does not name agents: each desk checks its own line
    against its tally sheet.)"""
    signed = reconciliation.get("agents", {})
    pooled = reconciliation.get("agents_pooled", {})
    if not isinstance(signed, dict) or not isinstance(pooled, dict):
        return "the signed ballots by agent are not an object"
    min_cell = reconciliation.get("min_cell", 1 if not (signed or pooled) else None)
    if not _whole(min_cell, least=1):
        return "ballots by agent are signed without the minimum cell size they keep"
    totals: dict[str, dict[str, int]] = {}

    def add(channel: str, cell: dict[str, int]) -> None:
        for name in ("entries", "counted"):
            total = totals.setdefault(channel, {"entries": 0, "counted": 0})
            total[name] += cell[name]

    for agent, cells in signed.items():
        if not (isinstance(agent, str) and AGENT_KEY.fullmatch(agent)) or \
                not isinstance(cells, dict):
            return f"{str(agent)[:40]!r} is not an agent's ballots"
        for channel, cell in cells.items():
            if not _cell(channel, cell, {"entries", "counted"}):
                return f"agent {agent}: {channel!r} is not a count of desk or paper ballots"
            if cell["entries"] < min_cell:
                return f"agent {agent}: {channel} counts {cell['entries']} ballots, fewer " \
                       f"than the minimum cell size ({min_cell}) a line is published at"
            add(channel, cell)
    for channel, pool in pooled.items():
        if not _cell(channel, pool, {"agents", "entries", "counted"}) or \
                not pool["agents"] <= pool["entries"] <= pool["agents"] * (min_cell - 1):
            return f"the pooled {channel!r} ballots are not those of agents with fewer " \
                   f"than {min_cell} each"
        add(channel, pool)
    for channel, total in totals.items():
        record = channels.get(channel, {"entries": 0, "counted": 0})
        if any(total[name] > record[name] for name in total):
            return f"the agents' {channel} ballots ({total}) are more than the record's " \
                   f"({record})"
    return None


def _whole(n: Any, least: int = 0) -> TypeGuard[int]:
    """A JSON whole number (not a boolean) of at least ``least``."""
    return isinstance(n, int) and not isinstance(n, bool) and n >= least


def _cell(channel: Any, cell: Any, names: set[str]) -> bool:
    """A count of an in-person channel with exactly ``names``, counted ≤ entries."""
    return channel in IN_PERSON_CHANNELS and isinstance(cell, dict) and \
        set(cell) == names and \
        all(_whole(n) for n in cell.values()) and cell["counted"] <= cell["entries"]


def _inclusion(docs: Documents) -> Check:
    proof = docs.proof or {}
    tracker = proof.get("tracker")
    entry = next((e for e in docs.record.get("entries", []) if e.get("tracker") == tracker),
                 None)
    try:
        leaf = bytes.fromhex(proof["leaf"])
        ok = entry is not None and merkle.leaf_hash(canonical_json(entry)) == leaf and \
            merkle.verify_inclusion(leaf, proof["index"], proof["size"],
                                    [bytes.fromhex(h) for h in proof["path"]],
                                    bytes.fromhex(docs.record["root"]))
    except (KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        return Check("inclusion", False, f"tracker {tracker}: no valid proof of inclusion")
    assert entry is not None
    if "height" in entry and entry not in log.counted(docs.record.get("entries", [])):
        return Check("inclusion", True, f"tracker {tracker} is in the record at index "
                     f"{proof['index']}, replaced by a later ballot: not counted (if you "
                     "did not vote again, report it)")
    return Check("inclusion", True, f"tracker {tracker} is counted, at index {proof['index']}")
