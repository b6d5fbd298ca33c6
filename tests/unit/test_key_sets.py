"""Key sets (urne/crypto/keys.py): rotation keeps what the old key signed verifiable,
revocation withdraws it, per-service folders give each role its own private keys only,
and keys are served as a JWK Set (RFC 7517, OKP Ed25519 as in RFC 8037)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from urne.contracts import wrap
from urne.contracts.events import PollClosed
from urne.crypto.keys import (
    ENVELOPE_KEY_NAMES,
    IDENTITY_TOKEN_KEY,
    KEY_NAMES,
    OWNED,
    TALLY_RESULT_KEY,
    PublicKey,
    SigningKey,
    generate_keys,
    generate_per_service,
    jwk,
    load_key_set,
    load_signing_key,
    owner_folder,
    revoke_key,
    rotate_key,
    share_public_keys,
)
from urne.crypto.tokens import InvalidToken, TokenIssuer, TokenVerifier
from urne.messaging.signatures import Refused, load_signer, load_verifier

pytestmark = pytest.mark.unit


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    generate_keys(tmp_path)
    return tmp_path


def test_a_rotated_key_still_verifies_what_it_signed_until_revoked(keys: Path) -> None:
    old_token = TokenIssuer(load_signing_key(keys, IDENTITY_TOKEN_KEY)).voting_token(
        "ab" * 32, "p1")[0]
    old, new = rotate_key(keys, IDENTITY_TOKEN_KEY)
    assert old != new and (keys / f"{IDENTITY_TOKEN_KEY}.pem").exists()
    assert load_signing_key(keys, IDENTITY_TOKEN_KEY).public.kid == new  # signs from now
    key_set = load_key_set(keys, IDENTITY_TOKEN_KEY)
    assert [(k.kid, status) for k, status in key_set.keys] == [(new, "current"),
                                                                (old, "retired")]
    new_token = TokenIssuer(load_signing_key(keys, IDENTITY_TOKEN_KEY)).voting_token(
        "cd" * 32, "p1")[0]
    verifier = TokenVerifier(key_set)
    assert verifier.voting(old_token).voter_key == "ab" * 32  # signed before the rotation
    assert verifier.voting(new_token).voter_key == "cd" * 32
    # The current key alone (what a process that did not reload holds) refuses the new.
    with pytest.raises(InvalidToken, match="unknown"):
        TokenVerifier(PublicKey(IDENTITY_TOKEN_KEY, Ed25519PrivateKey.generate().public_key())
                      ).voting(new_token)

    revoke_key(keys, IDENTITY_TOKEN_KEY, old)
    revoked = TokenVerifier(load_key_set(keys, IDENTITY_TOKEN_KEY))
    with pytest.raises(InvalidToken, match="revoked"):
        revoked.voting(old_token)
    assert revoked.voting(new_token).voter_key == "cd" * 32


def test_only_a_retired_key_can_be_revoked(keys: Path) -> None:
    current = load_key_set(keys, TALLY_RESULT_KEY).current.kid
    with pytest.raises(ValueError, match="rotate it first"):
        revoke_key(keys, TALLY_RESULT_KEY, current)
    with pytest.raises(ValueError, match="no retired"):
        revoke_key(keys, TALLY_RESULT_KEY, "0" * 16)


def test_envelopes_signed_before_a_rotation_pass_and_a_revoked_key_is_refused(
        keys: Path) -> None:
    before = load_signer(keys, "proposal").sign(
        wrap(PollClosed(poll_id="p1", closed_at="2026-06-01T10:00:00Z"), "proposal"))
    old, _ = rotate_key(keys, "envelope-proposal")
    load_verifier(keys, "test").check(before)
    load_verifier(keys, "test").check(load_signer(keys, "proposal").sign(before))
    revoke_key(keys, "envelope-proposal", old)
    with pytest.raises(Refused) as refused:
        load_verifier(keys, "test").check(before)
    assert refused.value.reason == "revoked_key"


def private_keys(folder: Path) -> set[str]:
    return {p.name.removesuffix(".pem") for p in folder.glob("*.pem")
            if not p.name.endswith(".pub.pem")}


def test_each_role_folder_holds_its_own_private_keys_and_every_public_key(
        tmp_path: Path) -> None:
    generate_per_service(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == set(OWNED)
    for role, names in OWNED.items():
        folder = tmp_path / role
        assert private_keys(folder) == set(names), role
        for name in KEY_NAMES:  # every public key: it verifies everyone
            assert load_key_set(folder, name).current.kid == \
                load_key_set(tmp_path / next(r for r, n in OWNED.items() if name in n),
                             name).current.kid
    assert set(ENVELOPE_KEY_NAMES) <= {n for names in OWNED.values() for n in names}
    # The gateway cannot sign as the tally, nor the vote service mint tokens.
    with pytest.raises(RuntimeError, match="missing signing key"):
        load_signing_key(tmp_path / "gateway", TALLY_RESULT_KEY)
    with pytest.raises(RuntimeError, match="missing signing key"):
        load_signing_key(tmp_path / "vote", IDENTITY_TOKEN_KEY)


def test_a_rotation_in_per_service_folders_reaches_every_role(tmp_path: Path) -> None:
    generate_per_service(tmp_path)
    assert owner_folder(tmp_path, TALLY_RESULT_KEY) == tmp_path / "tally"
    old, new = rotate_key(owner_folder(tmp_path, TALLY_RESULT_KEY), TALLY_RESULT_KEY)
    share_public_keys(tmp_path)
    for role in OWNED:
        statuses = {k.kid: s for k, s in load_key_set(tmp_path / role, TALLY_RESULT_KEY).keys}
        assert statuses == {new: "current", old: "retired"}, role
    revoke_key(tmp_path / "tally", TALLY_RESULT_KEY, old)
    share_public_keys(tmp_path)
    for role in OWNED:
        statuses = {k.kid: s for k, s in load_key_set(tmp_path / role, TALLY_RESULT_KEY).keys}
        assert statuses == {new: "current", old: "revoked"}, role


# RFC 8037, appendix A.1 and A.2: an Ed25519 private key "d" and its public key "x".
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"


def test_a_key_is_served_as_an_rfc8037_jwk() -> None:
    d = base64.urlsafe_b64decode(RFC8037_D + "=")
    key = SigningKey("tally-result", Ed25519PrivateKey.from_private_bytes(d)).public
    served = jwk(key, "retired")
    assert (served["kty"], served["crv"], served["x"]) == ("OKP", "Ed25519", RFC8037_X)
    assert (served["use"], served["alg"], served["kid"]) == ("sig", "EdDSA", key.kid)
    assert (served["name"], served["status"]) == ("tally-result", "retired")
    assert served["public_key"] == served["x"]  # the member served before the JWK ones


def test_the_keys_commands_generate_rotate_and_revoke(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from urne.runtime.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["keys", "generate", str(tmp_path), "--per-service"]
                         ).exit_code == 0
    rotated = runner.invoke(app, ["keys", "rotate", str(tmp_path), "envelope-vote"])
    assert rotated.exit_code == 0, rotated.output
    old = rotated.output.split(": ")[1].split()[0]
    assert load_key_set(tmp_path / "gateway", "envelope-vote").status(old) == "retired"
    revoked = runner.invoke(app, ["keys", "revoke", str(tmp_path), "envelope-vote", old])
    assert revoked.exit_code == 0, revoked.output
    assert load_key_set(tmp_path / "tally", "envelope-vote").status(old) == "revoked"
    again = runner.invoke(app, ["keys", "revoke", str(tmp_path), "envelope-vote", old])
    assert again.exit_code != 0 and "no retired" in again.output
    assert runner.invoke(app, ["keys", "rotate", str(tmp_path), "nonsense"]).exit_code != 0
