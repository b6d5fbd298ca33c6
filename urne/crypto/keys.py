"""Ed25519 signing keys, kept as PEM files in ``URNE_KEYS_DIR``.

Key pairs, each private half needed only by the service that signs:
``identity-token`` (access and voting tokens), ``tally-result`` (results) and, in the
distributed profile, ``envelope-<role>`` (the messages each role publishes:
``urne/messaging/signatures.py``). Every other process needs the ``.pub.pem`` files
only (least privilege).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

IDENTITY_TOKEN_KEY = "identity-token"
TALLY_RESULT_KEY = "tally-result"
ENVELOPE_KEY_NAMES = tuple(f"envelope-{role}" for role in
                           ("gateway", "identity", "proposal", "vote", "tally"))
KEY_NAMES = (IDENTITY_TOKEN_KEY, TALLY_RESULT_KEY, *ENVELOPE_KEY_NAMES)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Keys are read, written and served with ``cryptography`` (PEM, PKCS#8, raw); signatures
# are made and checked with libsodium (PyNaCl), on the ballot path several times a
# ballot: 0.06 ms a check against OpenSSL's 0.15 on this machine (``loadtests.tokens``).
# Ed25519 is deterministic, so both make the same bytes (tests/unit/test_jws.py).


@dataclass(frozen=True)
class PublicKey:
    name: str
    key: Ed25519PublicKey
    raw: bytes = field(init=False, repr=False, compare=False)
    kid: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _raw(self.key))
        object.__setattr__(self, "kid", hashlib.sha256(self.raw).hexdigest()[:16])

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``data``."""
        if len(signature) != nacl.bindings.crypto_sign_BYTES:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + data, self.raw)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def raw_b64url(self) -> str:
        return b64url(self.raw)


@dataclass(frozen=True)
class SigningKey:
    name: str
    key: Ed25519PrivateKey
    public: PublicKey = field(init=False, compare=False)
    # libsodium's secret key: the 32-byte seed followed by the public key.
    _secret: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        public = PublicKey(self.name, self.key.public_key())
        seed = self.key.private_bytes(serialization.Encoding.Raw,
                                      serialization.PrivateFormat.Raw,
                                      serialization.NoEncryption())
        object.__setattr__(self, "public", public)
        object.__setattr__(self, "_secret", seed + public.raw)

    def sign(self, data: bytes) -> bytes:
        # crypto_sign returns the signature followed by the message.
        return nacl.bindings.crypto_sign(data, self._secret)[:nacl.bindings.crypto_sign_BYTES]


def generate_keys(keys_dir: Path, names: tuple[str, ...] = KEY_NAMES) -> None:
    """Create missing key pairs (never overwrites an existing key)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        private_path = keys_dir / f"{name}.pem"
        if private_path.exists():
            continue
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        (keys_dir / f"{name}.pub.pem").write_text(SigningKey(name, key).public.pem())


def load_signing_key(keys_dir: Path, name: str) -> SigningKey:
    path = keys_dir / f"{name}.pem"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise RuntimeError(f"missing signing key {path}; run `urne keys generate`") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError(f"{path} is not an Ed25519 key")
    return SigningKey(name, key)


Status = Literal["current", "retired", "revoked"]


def jwk(key: PublicKey, status: Status) -> dict[str, str]:
    """A public key as a JSON Web Key (RFC 7517; an Ed25519 key is an OKP key, RFC
    8037), with urne's own members beside the standard ones: which key it is
    (``name``), whether it is current, retired or revoked (``status``), and the forms
    urne served first (``algorithm``, ``public_key``, ``pem``)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": key.raw_b64url(), "kid": key.kid,
            "use": "sig", "alg": "EdDSA", "name": key.name, "status": status,
            "algorithm": "Ed25519", "public_key": key.raw_b64url(), "pem": key.pem()}


@dataclass(frozen=True)
class KeySet:
    """Every public key of one name: the current one (``<name>.pub.pem``), retired ones
    (``<name>.retired-<kid>.pub.pem``: what they signed still verifies) and revoked
    ones (``<name>.revoked-<kid>.pub.pem``: listed, never trusted). Verifiers select a
    key by the ``kid`` a signature names, so a key can be rotated without invalidating
    what its predecessor signed (``urne keys rotate``), and withdrawn (``urne keys
    revoke``)."""

    name: str
    keys: tuple[tuple[PublicKey, Status], ...]

    @property
    def current(self) -> PublicKey:
        return next(k for k, status in self.keys if status == "current")

    def status(self, kid: str) -> Status | None:
        return next((status for k, status in self.keys if k.kid == kid), None)

    def trusted(self, kid: str) -> PublicKey | None:
        """The key with this id, unless it is unknown or revoked."""
        return next((k for k, status in self.keys if k.kid == kid and status != "revoked"),
                    None)

    @classmethod
    def of(cls, key: PublicKey) -> KeySet:
        return cls(key.name, ((key, "current"),))


def load_key_set(keys_dir: Path, name: str) -> KeySet:
    keys: list[tuple[PublicKey, Status]] = [(load_public_key(keys_dir, name), "current")]
    for status in ("retired", "revoked"):
        for path in sorted(keys_dir.glob(f"{name}.{status}-*.pub.pem")):
            keys.append((_public_from(path, name), status))
    return KeySet(name, tuple(keys))


def rotate_key(keys_dir: Path, name: str) -> tuple[str, str]:
    """Retire the current key pair of ``name`` and make a new one; returns (old kid,
    new kid). The old private key is deleted: nothing signs with it again."""
    old = load_public_key(keys_dir, name)
    (keys_dir / f"{name}.retired-{old.kid}.pub.pem").write_text(old.pem())
    (keys_dir / f"{name}.pem").unlink(missing_ok=True)
    (keys_dir / f"{name}.pub.pem").unlink()
    generate_keys(keys_dir, (name,))
    return old.kid, load_public_key(keys_dir, name).kid


def revoke_key(keys_dir: Path, name: str, kid: str) -> None:
    """Mark a retired key of ``name`` revoked (rotate first to revoke the current one)."""
    if load_public_key(keys_dir, name).kid == kid:
        raise ValueError(f"{kid} is the current {name} key: rotate it first")
    retired = keys_dir / f"{name}.retired-{kid}.pub.pem"
    if not retired.exists():
        raise ValueError(f"no retired {name} key {kid} in {keys_dir}")
    retired.rename(keys_dir / f"{name}.revoked-{kid}.pub.pem")


def _public_from(path: Path, name: str) -> PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise RuntimeError(f"{path} is not an Ed25519 key")
    return PublicKey(name, key)


def load_public_key(keys_dir: Path, name: str) -> PublicKey:
    path = keys_dir / f"{name}.pub.pem"
    try:
        return _public_from(path, name)
    except FileNotFoundError as exc:
        raise RuntimeError(f"missing public key {path}; run `urne keys generate`") from exc


# Per-service key folders (``urne keys generate DIR --per-service``): each role's folder
# holds the private keys that role signs with, and every public key, so a process
# given only its own folder can verify the others and sign as no one else.
OWNED: dict[str, tuple[str, ...]] = {
    "identity": (IDENTITY_TOKEN_KEY, "envelope-identity"),
    "tally": (TALLY_RESULT_KEY, "envelope-tally"),
    "proposal": ("envelope-proposal",),
    "vote": ("envelope-vote",),  # the vote service and its vote workers
    "gateway": ("envelope-gateway",),
}


def generate_per_service(root: Path) -> None:
    """``root/<role>/`` for each role: its own private keys (made where missing, never
    overwritten) and everyone's public keys."""
    for role, names in OWNED.items():
        generate_keys(root / role, names)
    share_public_keys(root)


def share_public_keys(root: Path) -> None:
    """Copy each role's public keys (current, retired, revoked) into every other role's
    folder, replacing what is there: after a rotation or a revocation."""
    for owner, names in OWNED.items():
        for name in names:
            published = sorted((root / owner).glob(f"{name}.*pub.pem"))
            for role in OWNED:
                if role == owner:
                    continue
                for stale in (root / role).glob(f"{name}.*pub.pem"):
                    stale.unlink()
                for path in published:
                    (root / role / path.name).write_bytes(path.read_bytes())


def owner_folder(root: Path, name: str) -> Path:
    """Where the private key ``name`` lives: ``root`` itself (one folder for all, as in
    development), or the folder of the role that owns it."""
    if (root / f"{name}.pem").exists() or not any((root / r).is_dir() for r in OWNED):
        return root
    return root / next(role for role, names in OWNED.items() if name in names)
