"""The auditor's verifier (``urne audit verify``) on the documents a real tally serves:
they hold as served, and each kind of tampering fails the check it should, and only
the checks it should."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.audit_schema import conforms
from tests.unit.helpers import ok
from tests.unit.test_tally import (
    AT,
    BALLOTS,
    POLL,
    RULES,
    ballot,
    census_opened,
    make_tally,
    opened,
    recorded,
    sealed,
)
from urne.audit import bundle
from urne.audit.verify import Documents, verify
from urne.contracts.commands import GetRecord, GetResult, ProveInclusion
from urne.contracts.events import BallotBoxSealedV2, BallotsRecorded, ElectorateCounted
from urne.counting import count, rules_adapter, rules_hash
from urne.crypto.keys import SigningKey, b64url, generate_keys, load_signing_key
from urne.record import log, merkle
from urne.record.canonical import ballot_set_digest, canonical_json
from urne.runtime.cli import app

pytestmark = pytest.mark.unit


@pytest.fixture
def served(tmp_path: Path, tally_key: SigningKey) -> Documents:
    """What the audit routes serve for a published poll (the gateway passes the tally's
    replies through), and the keys route."""
    tally = make_tally(tmp_path, tally_key)
    tally.feed(opened(), *BALLOTS, sealed(4))
    record = ok(tally.core, GetRecord(poll_id=POLL))[0]
    signed = ok(tally.core, GetResult(poll_id=POLL))[0]
    proof = ok(tally.core, ProveInclusion(poll_id=POLL, tracker="TC1"))[0]
    public = tally_key.public
    keys = {"keys": [{"name": "tally-result", "kid": public.kid, "algorithm": "Ed25519",
                      "public_key": public.raw_b64url(), "pem": public.pem()}]}
    rules = {"poll_id": POLL, "rules": RULES.model_dump(mode="json"),
             "rules_hash": signed["result"]["rules_hash"]}
    return Documents(keys=keys, rules=rules, record=record, signed=signed, proof=proof)


def keys_of(key: SigningKey) -> dict:
    """The keys route's answer with the one tally-result key."""
    return {"keys": [{"name": "tally-result", "kid": key.public.kid,
                      "public_key": key.public.raw_b64url()}]}


def failing(docs: Documents, pinned: str | None = None) -> list[str]:
    return [c.name for c in verify(docs, pinned) if not c.ok]


def test_the_served_documents_hold(served: Documents, tally_key: SigningKey) -> None:
    checks = verify(served, pinned_kid=tally_key.public.kid)
    assert [(c.name, c.ok) for c in checks] == [
        ("signature", True), ("rules", True), ("record", True), ("tally", True),
        ("inclusion", True)]
    assert "pinned" in checks[0].detail


def tampered(docs: Documents, **changes: Any) -> Documents:
    fields = {f: copy.deepcopy(getattr(docs, f)) for f in
              ("keys", "rules", "record", "signed", "proof")}
    for name, change in changes.items():
        change(fields[name])
    return Documents(**fields)


def test_a_changed_choice_in_the_record_fails_the_root_and_the_tally(served: Documents
                                                                    ) -> None:
    def flip(record: dict) -> None:
        record["entries"][0]["choice"] = {"answer": "no"}

    assert failing(tampered(served, record=flip)) == ["record", "tally"]


def test_a_dropped_ballot_fails_the_record(served: Documents) -> None:
    def drop(record: dict) -> None:
        del record["entries"][0]

    assert "record" in failing(tampered(served, record=drop))


def test_a_changed_tally_fails_the_signature_and_the_recount(served: Documents) -> None:
    def inflate(signed: dict) -> None:
        signed["result"]["tally"]["counts"]["yes"] += 1

    assert failing(tampered(served, signed=inflate)) == ["signature", "tally"]


def test_other_rules_fail_the_rules_hash(served: Documents) -> None:
    def other(rules: dict) -> None:
        rules["rules"]["question"] = "Another question?"

    assert failing(tampered(served, rules=other)) == ["rules"]


def test_a_key_other_than_the_pinned_one_fails(served: Documents, tmp_path: Path) -> None:
    generate_keys(tmp_path / "other")
    other = load_signing_key(tmp_path / "other", "tally-result").public
    assert failing(served, pinned=other.kid) == ["signature"]

    def swap(keys: dict) -> None:  # a server serving another key under the same id
        keys["keys"][0]["public_key"] = other.raw_b64url()

    assert failing(tampered(served, keys=swap)) == ["signature"]


def test_a_proof_for_another_place_fails(served: Documents) -> None:
    def move(proof: dict) -> None:
        proof["index"] = (proof["index"] + 1) % proof["size"]

    assert failing(tampered(served, proof=move)) == ["inclusion"]


def test_a_result_signed_with_a_retired_key_holds_and_with_a_revoked_one_fails(
        served: Documents) -> None:
    retired = tampered(served, keys=lambda k: k["keys"][0].update(status="retired"))
    [signature] = [c for c in verify(retired) if c.name == "signature"]
    assert signature.ok and "retired" in signature.detail
    revoked = tampered(served, keys=lambda k: k["keys"][0].update(status="revoked"))
    assert failing(revoked) == ["signature"]
    [signature] = [c for c in verify(revoked) if c.name == "signature"]
    assert "revoked" in signature.detail


# --- bundles: the same documents saved in a folder, verified offline -------------------


def save(docs: Documents, folder: Path) -> Path:
    """A bundle as `urne audit fetch` writes it (bundle.py's layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / bundle.KEYS).write_text(json.dumps(docs.keys))
    (folder / bundle.RULES).write_text(json.dumps(docs.rules))
    (folder / bundle.RESULT).write_text(json.dumps(docs.signed))
    (folder / bundle.RECORD).write_bytes(b"".join(canonical_json(e) + b"\n"
                                                  for e in docs.record["entries"]))
    (folder / bundle.RECORD_HEADERS).write_text(json.dumps(
        {"poll_id": POLL, "size": docs.record["size"], "root": docs.record["root"]}))
    assert docs.proof is not None
    receipt = bundle.receipt_path(folder, docs.proof["tracker"])
    receipt.parent.mkdir()
    receipt.write_text(json.dumps(docs.proof))
    return folder


def verify_bundle(folder: Path, *options: str) -> tuple[int, dict[str, Any] | str]:
    done = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(folder), "--json",
                                    *options])
    try:
        return done.exit_code, json.loads(done.output)
    except ValueError:
        return done.exit_code, done.output


def test_a_bundle_holds_offline(served: Documents, tmp_path: Path,
                                tally_key: SigningKey) -> None:
    folder = save(served, tmp_path / "bundle")
    loaded = bundle.load(folder, "TC1")
    assert (loaded.keys, loaded.rules, loaded.signed, loaded.proof) == (
        served.keys, served.rules, served.signed, served.proof)
    assert loaded.record == {k: served.record[k] for k in ("size", "root", "entries")}
    code, report = verify_bundle(folder, "--receipt", "TC1", "--kid", tally_key.public.kid)
    assert code == 0 and isinstance(report, dict), report
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("signature", True), ("rules", True), ("record", True), ("tally", True),
        ("inclusion", True)]
    assert report["ballots"] == served.record["size"] and "download_s" not in report["timings"]


def test_a_bundle_with_a_changed_line_fails_and_says_where(served: Documents,
                                                          tmp_path: Path) -> None:
    folder = save(served, tmp_path / "bundle")
    lines = (folder / bundle.RECORD).read_bytes().splitlines(keepends=True)
    entry = json.loads(lines[0])
    entry["choice"] = {"answer": "no" if entry["choice"]["answer"] != "no" else "yes"}
    (folder / bundle.RECORD).write_bytes(canonical_json(entry) + b"\n" + b"".join(lines[1:]))
    code, report = verify_bundle(folder)
    assert code == 1 and isinstance(report, dict)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["record", "tally"]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / bundle.RESULT).unlink(), "result.json is missing"),
    (lambda f: (f / bundle.RULES).write_text("[1, 2"), "rules.json is not a JSON object"),
    (lambda f: (f / bundle.RECORD).write_bytes(b'{"tracker": "T"}\nnot json\n'),
     "record.ndjson, line 2: not JSON"),
])
def test_a_bundle_that_cannot_be_read_is_not_a_verdict(
        served: Documents, tmp_path: Path, damage: Any, message: str) -> None:
    folder = save(served, tmp_path / "bundle")
    damage(folder)
    code, output = verify_bundle(folder)
    assert code == 2 and message in str(output)


def test_a_tracker_cannot_name_a_file_outside_the_bundle(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match="not one urne gives"):
        bundle.receipt_path(tmp_path, "../../etc/passwd")


def test_verify_wants_a_bundle_or_a_server(tmp_path: Path) -> None:
    for options in ([], ["--url", "http://127.0.0.1:9"],
                    ["--url", "http://127.0.0.1:9", "--poll", "p", "--bundle", str(tmp_path)]):
        done = CliRunner().invoke(app, ["audit", "verify", *options])
        assert done.exit_code == 2 and "--bundle" in done.output


def test_audit_head_wants_a_signed_head_and_a_server(tmp_path: Path) -> None:
    """Exit status 2, with the reason, when the saved head cannot be read or the server
    cannot be reached (nothing listens on port 9 of the loopback)."""
    head = tmp_path / "head.json"
    for content, says in (("not json", "not a signed tree head"),
                          ('{"head": {}}', "not a signed tree head"),
                          ('{"head": {"size": 3}}', "http://127.0.0.1:9: ")):
        head.write_text(content)
        done = CliRunner().invoke(app, ["audit", "head", "--url", "http://127.0.0.1:9",
                                        "--poll", "p", "--head", str(head)])
        assert done.exit_code == 2 and says in done.output, done.output
    done = CliRunner().invoke(app, ["audit", "head", "--url", "http://127.0.0.1:9",
                                    "--poll", "p", "--head", str(tmp_path / "absent.json")])
    assert done.exit_code == 2 and "absent.json" in done.output


@pytest.mark.parametrize(("change", "fails", "says"), [
    (lambda e: e["choice"].update(note="x"), ["record", "tally"], "not a valid recorded choice"),
    (lambda e: e.update(seen_at="2026-11-30"), ["record"], "exactly the members"),
    (lambda e: e["choice"].update(answer="maybe"), ["record", "tally"],
     "not a valid recorded choice"),
])
def test_an_entry_the_tally_would_not_write_fails(
        served: Documents, change: Any, fails: list[str], says: str) -> None:
    """Even when it would count the same: the record holds recorded choices only, and
    log entries with their members only."""
    damaged = tampered(served, record=lambda r: change(r["entries"][1]))
    assert failing(damaged) == fails
    [check] = [c for c in verify(damaged) if c.name == fails[-1]]
    assert says in check.detail and "entry 1" in check.detail


# --- tampering, by attacker: what each one changes, and what detects it -----------------


def resign(docs: Documents, key: SigningKey) -> Documents:
    """The operator holds the tally's key: the log chained again, the result made to
    match it, and signed again."""
    out = tampered(docs)
    result = out.signed["result"]
    parent = result["rules_hash"]
    for height, entry in enumerate(out.record["entries"]):
        entry.update(height=height, parent=parent)
        parent = log.leaf(entry).hex()
    entries = out.record["entries"]
    leaves = [merkle.leaf_hash(canonical_json(e)) for e in entries]
    root = merkle.root(leaves).hex()
    out.record.update(size=len(leaves), root=root)
    result["record"].update(size=len(leaves), root=root, heads=[len(leaves)])
    frozen = rules_adapter.validate_python(out.rules["rules"])
    result["tally"] = count(frozen, [e["choice"] for e in log.counted(entries)])
    result.update(ballots_received=len(entries), ballots_counted=len(log.counted(entries)),
                  reconciliation={"channels": log.channels(entries)})
    out.signed["signature"] = b64url(key.sign(canonical_json(result)))
    return out


def insert(record: dict) -> None:
    record["entries"].insert(1, {**record["entries"][1], "tracker": "TB0",
                                 "choice": {"answer": "yes"}})


def reorder(record: dict) -> None:
    entries = record["entries"]
    entries[0], entries[1] = entries[1], entries[0]


def duplicate(record: dict) -> None:
    record["entries"].insert(1, copy.deepcopy(record["entries"][0]))


def alter(record: dict) -> None:
    record["entries"][3]["choice"] = {"answer": "no"}  # TC1: the voter holding the receipt


def delete(record: dict) -> None:
    del record["entries"][3]


def alter_middle(record: dict) -> None:
    record["entries"][0]["choice"] = {"answer": "no"}


def delete_middle(record: dict) -> None:
    del record["entries"][0]


@pytest.mark.parametrize(("change", "fails", "says"), [
    # An operator rewriting the stored record after the result was signed: the chain,
    # the signed root and size (the record check), and the recount.
    (alter, ["record", "tally", "inclusion"], "signed: 4 with"),
    (alter_middle, ["record", "tally"], "entry 1 does not chain"),
    (delete, ["record", "tally", "inclusion"], "entries were deleted or added at its end"),
    (delete_middle, ["record", "tally"], "entry 0 says it is at height 1"),
    (insert, ["record", "tally"], "entry 2 says it is at height 1"),
    (reorder, ["record"], "entry 0 says it is at height 1"),
    (duplicate, ["record", "tally"], "entry 1 says it is at height 0"),
], ids=["altered", "altered-middle", "deleted", "deleted-middle", "inserted", "reordered",
        "duplicated"])
def test_a_rewritten_record_is_detected_by_the_signed_root(
        served: Documents, change: Any, fails: list[str], says: str) -> None:
    damaged = tampered(served, record=change)
    assert failing(damaged) == fails
    [record] = [c for c in verify(damaged) if c.name == "record"]
    assert says in record.detail


@pytest.mark.parametrize("change", [alter, delete], ids=["altered", "deleted"])
def test_a_rewrite_signed_again_with_the_tallys_key_is_detected_by_the_receipt(
        served: Documents, tally_key: SigningKey, change: Any) -> None:
    """An operator holding the key rewrites the record and signs a matching result: the
    documents agree with each other, and only the voter whose ballot changed, checking
    their receipt's proof against the new root, sees it."""
    forged = resign(tampered(served, record=change), tally_key)
    assert failing(forged, tally_key.public.kid) == ["inclusion"]
    unchanged = Documents(forged.keys, forged.rules, forged.record, forged.signed)
    assert failing(unchanged, tally_key.public.kid) == []  # nobody else can tell


def test_a_revote_the_operator_made_up_is_told_to_its_voter_only(
        served: Documents, tmp_path: Path, tally_key: SigningKey) -> None:
    """An operator holding the stores and the tally's key slips in a later ballot for
    voter c, who voted once: seal, record and result all agree and verify, and only c's
    receipt, checked against them, says the ballot was replaced."""
    forged_ballot = ballot("c", 2, "no")
    ids = [b.ballots[0].ballot_id for b in (*BALLOTS, forged_ballot)]
    tally = make_tally(tmp_path / "forged", tally_key)
    tally.feed(opened(), *BALLOTS, forged_ballot, BallotBoxSealedV2(
        poll_id=POLL, ballots_recorded=len(ids), ballots_digest=ballot_set_digest(ids),
        sealed_at=AT))
    forged = Documents(
        keys=served.keys, rules=served.rules,
        record=ok(tally.core, GetRecord(poll_id=POLL))[0],
        signed=ok(tally.core, GetResult(poll_id=POLL))[0],
        proof=ok(tally.core, ProveInclusion(poll_id=POLL, tracker="TC1"))[0])
    checks = verify(forged, tally_key.public.kid)
    assert [c.name for c in checks if not c.ok] == []
    [inclusion] = [c for c in checks if c.name == "inclusion"]
    assert "replaced by a later ballot: not counted (if you did not vote again, report it)" \
        in inclusion.detail
    # The same receipt against what was really served: counted.
    [honest] = [c for c in verify(served, tally_key.public.kid) if c.name == "inclusion"]
    assert honest.ok and "is counted" in honest.detail


def test_the_rules_changed_after_the_fact_are_detected_by_their_hash(served: Documents
                                                                      ) -> None:
    """An operator serving other rules than those frozen and signed."""
    def widen(rules: dict) -> None:
        rules["rules"]["question"] = "Faut-il NE PAS piétonniser la place ?"

    damaged = tampered(served, rules=widen)
    assert failing(damaged) == ["rules"]
    [check] = [c for c in verify(damaged) if c.name == "rules"]
    assert "differs from the served" in check.detail


DESK, PAPER = "a" * 32, "b" * 32  # two agents' names (agent_key)
AGENT_ROWS = [recorded("a", 1, "yes").model_copy(update={"channel": "desk", "agent": DESK}),
              recorded("a", 2, "no"),
              recorded("p", 1, "yes").model_copy(update={"channel": "paper", "agent": PAPER}),
              recorded("q", 1, "no").model_copy(update={"channel": "paper", "agent": PAPER}),
              recorded("c", 1, "yes")]


@pytest.fixture
def with_agents(tmp_path: Path, tally_key: SigningKey) -> Documents:
    """A published poll with ballots cast at a desk and entered from paper, each by its
    agent (as their voting tokens name them), and one desk ballot replaced online; every
    agent's line published (a minimum cell size of 1)."""
    tally = make_tally(tmp_path, tally_key, min_cell=1)
    rows = AGENT_ROWS
    tally.feed(opened(), BallotsRecorded(ballots=rows), BallotBoxSealedV2(
        poll_id=POLL, ballots_recorded=len(rows), sealed_at=AT,
        ballots_digest=ballot_set_digest([r.ballot_id for r in rows])))
    return Documents(
        keys=keys_of(tally_key),
        rules={"poll_id": POLL, "rules": RULES.model_dump(mode="json"),
               "rules_hash": rules_hash(RULES)},
        record=ok(tally.core, GetRecord(poll_id=POLL))[0],
        signed=ok(tally.core, GetResult(poll_id=POLL))[0])


def test_the_result_reconciles_each_agents_ballots(with_agents: Documents) -> None:
    """What each desk compares with its own tally sheet; the record does not name
    agents (their ballots are entries like any other), the verifier checks they fit."""
    result = with_agents.signed["result"]
    assert result["reconciliation"] == {
        "channels": {"desk": {"entries": 1, "counted": 0},
                     "online": {"entries": 2, "counted": 2},
                     "paper": {"entries": 2, "counted": 2}},
        "agents": {DESK: {"desk": {"entries": 1, "counted": 0}},
                   PAPER: {"paper": {"entries": 2, "counted": 2}}},
        "min_cell": 1}
    assert all("agent" not in e for e in with_agents.record["entries"])
    assert all(c.ok for c in verify(with_agents)), verify(with_agents)
    assert conforms("signed_result", with_agents.signed) == []
    named = copy.deepcopy(with_agents.signed)  # a person id where an agent key goes
    named["result"]["reconciliation"]["agents"] = {"agent-1": {"paper": {
        "entries": 1, "counted": 1}}}
    assert conforms("signed_result", named) != []


@pytest.mark.parametrize(("agents", "says"), [
    ({PAPER: {"paper": {"entries": 3, "counted": 3}}}, "more than the record's"),
    ({PAPER: {"paper": {"entries": 2, "counted": 2}},
      "c" * 32: {"paper": {"entries": 1, "counted": 1}}}, "more than the record's"),
    ({PAPER: {"online": {"entries": 1, "counted": 1}}}, "not a count of desk or paper"),
    ({PAPER: {"paper": {"entries": 1, "counted": 2}}}, "not a count of desk or paper"),
    ({"agent-1": {"paper": {"entries": 1, "counted": 1}}}, "not an agent's ballots"),
    ([], "not an object"),
], ids=["more", "another agent", "online", "counted above entries", "a person id", "list"])
def test_ballots_by_agent_the_record_cannot_hold_fail(
        with_agents: Documents, tally_key: SigningKey, agents: Any, says: str) -> None:
    """An operator who signs more desk or paper ballots for an agent than the record
    holds (ballots a desk never entered), or counts that are no counts."""
    forged = copy.deepcopy(with_agents)
    result = forged.signed["result"]
    result["reconciliation"]["agents"] = agents
    forged.signed["signature"] = b64url(tally_key.sign(canonical_json(result)))
    [tally] = [c for c in verify(forged) if c.name == "tally"]
    assert not tally.ok and says in tally.detail, tally.detail
    assert failing(forged) == ["tally"]


def test_an_agents_small_line_is_pooled(with_agents: Documents, tmp_path: Path,
                                        tally_key: SigningKey) -> None:
    """The same poll with a minimum cell size of 2: the desk's one ballot would tell
    that one person came to it, so it is pooled; the paper line (2) is published."""
    tally = make_tally(tmp_path / "pooled", tally_key, min_cell=2)
    tally.feed(opened(), BallotsRecorded(ballots=AGENT_ROWS), BallotBoxSealedV2(
        poll_id=POLL, ballots_recorded=len(AGENT_ROWS), sealed_at=AT,
        ballots_digest=ballot_set_digest([r.ballot_id for r in AGENT_ROWS])))
    pooled = replace(with_agents, record=ok(tally.core, GetRecord(poll_id=POLL))[0],
                     signed=ok(tally.core, GetResult(poll_id=POLL))[0])
    reconciliation = pooled.signed["result"]["reconciliation"]
    assert {k: v for k, v in reconciliation.items() if k != "channels"} == {
        "agents": {PAPER: {"paper": {"entries": 2, "counted": 2}}},
        "agents_pooled": {"desk": {"agents": 1, "entries": 1, "counted": 0}},
        "min_cell": 2}
    assert all(c.ok for c in verify(pooled)), verify(pooled)
    assert conforms("signed_result", pooled.signed) == []


@pytest.mark.parametrize(("change", "says"), [
    ({"min_cell": 3}, "fewer than the minimum cell size (3)"),
    ({"min_cell": None}, "without the minimum cell size"),
    ({"agents_pooled": {"desk": {"agents": 1, "entries": 2, "counted": 0}}},
     "not those of agents with fewer than 2 each"),
    ({"agents_pooled": {"desk": {"agents": 1, "entries": 1, "counted": 0},
                        "paper": {"agents": 1, "entries": 1, "counted": 1}}},
     "more than the record's"),
], ids=["a line below the size", "no size", "a pool of big lines", "a pool too big"])
def test_pooled_lines_that_break_the_minimum_cell_size_fail(
        with_agents: Documents, tally_key: SigningKey, change: dict[str, Any],
        says: str) -> None:
    """An operator who publishes a small line alone (or hides the size it keeps), or
    pools what the record does not hold."""
    forged = copy.deepcopy(with_agents)
    forged.signed["result"]["reconciliation"] = {
        "channels": with_agents.signed["result"]["reconciliation"]["channels"],
        "agents": {PAPER: {"paper": {"entries": 2, "counted": 2}}},
        "agents_pooled": {"desk": {"agents": 1, "entries": 1, "counted": 0}},
        "min_cell": 2}
    assert_tally_fails(reconciled(forged, tally_key, change), says)


def reconciled(docs: Documents, key: SigningKey, change: dict[str, Any]) -> Documents:
    """``docs`` with these members of the result's reconciliation set (None: removed),
    signed again with the tally's key: the operator's own forgery."""
    result = docs.signed["result"]
    for name, value in change.items():
        if value is None:
            del result["reconciliation"][name]
        else:
            result["reconciliation"][name] = value
    docs.signed["signature"] = b64url(key.sign(canonical_json(result)))
    return docs


def assert_tally_fails(docs: Documents, says: str) -> None:
    [tally] = [c for c in verify(docs) if c.name == "tally"]
    assert not tally.ok and says in tally.detail, tally.detail
    assert failing(docs) == ["tally"]


@pytest.fixture
def census_poll(tmp_path: Path, tally_key: SigningKey) -> Documents:
    """A census poll of four eligible people, three of whom voted (b twice), as served."""
    tally = make_tally(tmp_path, tally_key)
    tally.feed(census_opened(), *BALLOTS, sealed(4),
               ElectorateCounted(poll_id=POLL, eligible=4, counted_at=AT))
    return Documents(
        keys=keys_of(tally_key),
        rules={"poll_id": POLL, "rules": RULES.model_dump(mode="json"),
               "rules_hash": rules_hash(RULES), "electorate": "census"},
        record=ok(tally.core, GetRecord(poll_id=POLL))[0],
        signed=ok(tally.core, GetResult(poll_id=POLL))[0])


def test_a_census_poll_signs_its_turnout(census_poll: Documents) -> None:
    assert census_poll.signed["result"]["reconciliation"] == {
        "channels": {"online": {"entries": 4, "counted": 3}}, "eligible": 4, "voters": 3}
    checks = verify(census_poll)
    assert all(c.ok for c in checks), checks
    [tally] = [c for c in checks if c.name == "tally"]
    assert "3 voters of 4 eligible people" in tally.detail
    assert conforms("signed_result", census_poll.signed) == []


@pytest.mark.parametrize(("electorate", "change", "says"), [
    ("census", {"eligible": 2}, "more voters (3) than eligible people (2)"),
    ("census", {"voters": 4, "eligible": 9}, "signs 4 voters, the record counts 3"),
    ("census", {"eligible": None}, "must sign its number of eligible people"),
    ("census", {"eligible": "4"}, "must sign its number of eligible people"),
    ("open", {}, "for a poll open to all"),
], ids=["fewer eligible than voters", "voters not the record's", "no eligible",
        "eligible not a number", "a poll open to all"])
def test_a_turnout_the_record_and_the_rules_cannot_give_fails(
        census_poll: Documents, tally_key: SigningKey, electorate: str,
        change: dict[str, Any], says: str) -> None:
    """An operator who signs a turnout the record does not hold (voters it never
    counted, an electorate smaller than its voters) or none for a census poll, or one
    for a poll its served rules say was open to all."""
    forged = copy.deepcopy(census_poll)
    forged.rules["electorate"] = electorate
    assert_tally_fails(reconciled(forged, tally_key, change), says)


def test_a_server_that_gives_a_record_without_its_size_and_root_is_a_fetch_error(
        tmp_path: Path) -> None:
    """Not urne's record (no ``Urne-Record-Size`` and ``Urne-Record-Root``): ``urne
    audit verify --url`` says so and exits 2, as for any document it cannot fetch."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Bare(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # every document 200, the record without its headers
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Bare)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = CliRunner().invoke(app, ["audit", "verify", "--url", url, "--poll", "p1"])
    finally:
        server.shutdown()
    assert result.exit_code == 2, result.output
    assert "Urne-Record-Size" in result.output
