"""Contracts: golden JSON Schemas, type names and ownership (D3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from urne.contracts import REGISTRY, Command, Envelope, Event, Message, schemas, unwrap, wrap
from urne.contracts.events import PollClosed

pytestmark = pytest.mark.unit

TYPE_NAME = re.compile(r"^[a-z_]+(\.[a-z_]+)+\.v[0-9]+$")
SERVICES = {"identity", "proposal", "vote", "tally", "*"}
HOW_TO_FIX = (
    "The JSON Schema of a contract changed. Within a version, a change may only add "
    "OPTIONAL fields (with a default); anything else (removing, renaming, retyping a "
    "field, making one required, tightening a constraint) needs a new message class "
    "with a .v2 type name, served side by side with .v1. Once the change is deliberate, "
    f"regenerate the golden files with `{schemas.COMMAND}` and commit them."
)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_golden_files_cover_every_type_and_the_envelope() -> None:
    exported = schemas.export()
    assert set(exported) == {*REGISTRY, "envelope"}
    on_disk = {p.name for p in schemas.SCHEMAS_DIR.glob("*.json")}
    expected = {f"{name}.json" for name in exported}
    assert on_disk == expected, (
        f"missing: {sorted(expected - on_disk)}; stale: {sorted(on_disk - expected)}.\n"
        f"{HOW_TO_FIX}")


@pytest.mark.parametrize("name", sorted(schemas.export()))
def test_schema_matches_its_golden_file_byte_for_byte(name: str) -> None:
    path = schemas.SCHEMAS_DIR / f"{name}.json"
    assert path.exists(), f"no golden file {path}.\n{HOW_TO_FIX}"
    actual = schemas.render(schemas.export()[name])
    golden = path.read_bytes().decode("utf-8")
    assert actual == golden, f"{name}: {HOW_TO_FIX}"


def test_check_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert schemas.main(["--check"]) == 0, capsys.readouterr().err


def test_render_is_sorted_indented_with_a_trailing_newline() -> None:
    text = schemas.render({"b": 1, "a": {"d": [1], "c": "é"}})
    assert text == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_check_reports_differences(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.differences(tmp_path) == []
    (tmp_path / "poll.open.v1.json").write_text("{}\n")
    (tmp_path / "poll.exploded.v1.json").write_text("{}\n")
    (tmp_path / "envelope.json").unlink()
    assert schemas.differences(tmp_path) == [
        "missing: envelope.json",
        "changed: poll.open.v1.json",
        "no longer exported: poll.exploded.v1.json",
    ]


def test_envelope_schema_is_the_envelope_model() -> None:
    assert schemas.export()["envelope"] == Envelope.model_json_schema()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_type_names_are_versioned(name: str) -> None:
    assert TYPE_NAME.match(name), name
    assert name == REGISTRY[name].TYPE


def test_every_registered_message_is_a_command_or_an_event() -> None:
    for name, cls in REGISTRY.items():
        assert issubclass(cls, Command) != issubclass(cls, Event), name


def test_every_event_has_a_known_producer() -> None:
    events = _subclasses(Event)
    assert events, "no events found"
    for cls in events:
        assert getattr(cls, "PRODUCER", None) in SERVICES - {"*"}, cls.__name__
        assert cls.TYPE in REGISTRY, f"{cls.__name__} is not registered"


def test_every_command_has_a_known_owner() -> None:
    commands = _subclasses(Command)
    assert commands, "no commands found"
    for cls in commands:
        if cls.__name__ == "Query":
            continue  # the abstract base of read-only commands
        assert getattr(cls, "OWNER", None) in SERVICES, cls.__name__


def test_messages_are_frozen() -> None:
    for name, cls in REGISTRY.items():
        assert cls.model_config.get("frozen") is True, name
    assert issubclass(Command, Message) and issubclass(Event, Message)


def test_readers_tolerate_fields_they_do_not_know() -> None:
    """A producer a release ahead may add an optional field, to the payload or to the
    envelope: a consumer still reads the message (and ignores the field) instead of
    dead-lettering it during a rolling upgrade."""
    closed = PollClosed(poll_id="p1", closed_at=datetime(2026, 1, 1, tzinfo=UTC))
    raw = wrap(closed, "proposal")
    raw["payload"]["reason"] = "a field from a later release"
    raw["signature"] = "another one"
    env, event = unwrap(raw)
    assert event == closed
    assert env.producer == "proposal"
