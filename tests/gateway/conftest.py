"""The gateway in-process: the embedded profile on a tmp data dir, driven by TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import ORGANISER, login
from urne.crypto.keys import generate_keys
from urne.platform.settings import EmbeddedSettings
from urne.runtime.embedded import build_app


@pytest.fixture
def settings(tmp_path: Path) -> EmbeddedSettings:
    return EmbeddedSettings(data_dir=tmp_path / "data", environment="test")


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """Fresh signing keys, for a gateway built over stubbed services."""
    generate_keys(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def outbox(settings: EmbeddedSettings) -> Path:
    """Where the development mailer writes sign-in codes (JSON lines with ``to`` and ``code``)."""
    return settings.outbox_dir / "email.jsonl"


@pytest.fixture
def client(settings: EmbeddedSettings) -> Iterator[TestClient]:
    # A context manager, so the lifespan runs: the bus and its SQLite files are closed after.
    with TestClient(build_app(settings)) as client:
        yield client


@pytest.fixture
def organiser(client: TestClient, outbox: Path) -> dict[str, str]:
    """``Authorization`` headers of the organiser, signed in through the API."""
    return login(client, outbox, ORGANISER)


@pytest.fixture
def participant(client: TestClient, outbox: Path) -> dict[str, str]:
    return login(client, outbox, "dora@example.org")


@pytest.fixture
def stubbed(keys_dir: Path) -> Iterator[Callable[[Any], TestClient]]:
    """Builds the gateway over a ``StubServices`` (tests/gateway/test_app.py) answering
    with the test's function; the clients are closed after the test."""
    from tests.gateway.test_app import StubServices
    from urne.gateway.app import create_app
    from urne.runtime.registry import SERVICES

    with ExitStack() as stack:
        def build(answer: Any) -> TestClient:
            app = create_app(StubServices(answer), keys_dir, services=tuple(SERVICES))
            return stack.enter_context(TestClient(app))

        yield build
