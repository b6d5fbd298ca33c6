"""Safe by default: `urne up` makes its data folder a pseudonym secret of its own, keeps
it, never serves a non-loopback address with the development one, and the Docker image
runs in production (development secrets and keys made on the fly refused)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from urne.platform.settings import DEV_CODE_SECRET, DEV_PSEUDONYM_SECRET, EmbeddedSettings
from urne.runtime.embedded import embedded, folder_secret

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_a_data_folder_gets_a_random_secret_of_its_own_and_keeps_it(tmp_path: Path) -> None:
    first = folder_secret(tmp_path / "a")
    assert first != DEV_PSEUDONYM_SECRET and len(first) >= 40
    assert folder_secret(tmp_path / "a") == first  # kept across restarts
    assert folder_secret(tmp_path / "b") != first  # each folder its own
    mode = (tmp_path / "a" / "pseudonym-secret").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_folder_with_voters_from_before_keeps_the_development_secret(tmp_path: Path) -> None:
    (tmp_path / "identity.db").touch()  # made before folders had secrets of their own
    assert folder_secret(tmp_path) == DEV_PSEUDONYM_SECRET
    assert folder_secret(tmp_path) == DEV_PSEUDONYM_SECRET
    # Its code secret is a new one: pending codes are all that a new one costs.
    assert folder_secret(tmp_path, "code-secret") not in (DEV_CODE_SECRET, "")


def test_urne_up_pseudonyms_come_from_the_folder_secret(tmp_path: Path) -> None:
    system = embedded(EmbeddedSettings(data_dir=tmp_path, environment="test"))
    try:
        core = system.bus.members["identity"].core
        handlers = next(iter(core.commands.values())).__self__  # type: ignore[attr-defined]
        assert handlers.secret == folder_secret(tmp_path) != DEV_PSEUDONYM_SECRET
        # The codes' secret: the folder's too, and another one.
        assert handlers.code_secret == folder_secret(tmp_path, "code-secret") not in (
            DEV_CODE_SECRET, handlers.secret)
        assert stat.S_IMODE((tmp_path / "code-secret").stat().st_mode) == 0o600
    finally:
        system.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "vote.example.org", "::"])
def test_the_development_secret_never_serves_beyond_loopback(host: str) -> None:
    with pytest.raises(ValidationError, match="development pseudonym secret"):
        EmbeddedSettings(host=host, pseudonym_secret=DEV_PSEUDONYM_SECRET)
    with pytest.raises(ValidationError, match="development code secret"):
        EmbeddedSettings(host=host, code_secret=DEV_CODE_SECRET)
    assert EmbeddedSettings(host=host).pseudonym_secret == ""  # unset: a random one
    for loopback in ("127.0.0.1", "localhost", "::1"):
        EmbeddedSettings(host=loopback, pseudonym_secret=DEV_PSEUDONYM_SECRET)


def test_a_folder_that_kept_the_development_secret_serves_loopback_only(
        tmp_path: Path) -> None:
    """The folder's own secret is checked as a given one is: one made with the
    development secret (voters from before) does not serve beyond loopback."""
    (tmp_path / "identity.db").touch()
    with pytest.raises(ValueError, match="development pseudonym secret may not serve"):
        embedded(EmbeddedSettings(data_dir=tmp_path, host="0.0.0.0", environment="test"))


def test_the_image_runs_in_production_by_default() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "URNE_ENVIRONMENT=production" in dockerfile
    with pytest.raises(ValidationError, match="URNE_PSEUDONYM_SECRET"):
        EmbeddedSettings(environment="production", host="0.0.0.0")
