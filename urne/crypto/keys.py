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
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

IDENTITY_TOKEN_KEY = "identity-token"
TALLY_RESULT_KEY = "tally-result"
ENVELOPE_KEY_NAMES = tuple(f"envelope-{role}" for role in
                           ("gateway", "identity", "proposal", "vote", "tally"))
KEY_NAMES = (IDENTITY_TOKEN_KEY, TALLY_RESULT_KEY, *ENVELOPE_KEY_NAMES)


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class PublicKey:
    name: str
    key: Ed25519PublicKey

    @property
    def kid(self) -> str:
        return key_id(self.key)

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def raw_b64url(self) -> str:
        return b64url(self.key.public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw))


@dataclass(frozen=True)
class SigningKey:
    name: str
    key: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.name, self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


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


def load_public_key(keys_dir: Path, name: str) -> PublicKey:
    path = keys_dir / f"{name}.pub.pem"
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError as exc:
        raise RuntimeError(f"missing public key {path}; run `urne keys generate`") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise RuntimeError(f"{path} is not an Ed25519 key")
    return PublicKey(name, key)
