"""Fixtures shared by the unit tests: real keys and SQLite files under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import Clock
from urne.crypto.keys import (
    IDENTITY_TOKEN_KEY,
    TALLY_RESULT_KEY,
    SigningKey,
    generate_keys,
    load_signing_key,
)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Key generation is cheap, but one set per session keeps the suite quick.
    path = tmp_path_factory.mktemp("keys")
    generate_keys(path)
    return path


@pytest.fixture(scope="session")
def identity_key(keys_dir: Path) -> SigningKey:
    return load_signing_key(keys_dir, IDENTITY_TOKEN_KEY)


@pytest.fixture(scope="session")
def tally_key(keys_dir: Path) -> SigningKey:
    return load_signing_key(keys_dir, TALLY_RESULT_KEY)


@pytest.fixture
def clock() -> Clock:
    return Clock()
