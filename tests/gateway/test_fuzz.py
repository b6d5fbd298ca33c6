"""A short schemathesis pass over the whole /v1 API, in-process: every operation of the
OpenAPI document, generated from it, against the embedded profile on a tmp data dir, with
schemathesis's default checks plus one of ours (every problem code is documented).

Once anonymously and once with an organiser's access token, so the organiser routes are
fuzzed past their 401. A deeper run: ``URNE_FUZZ_EXAMPLES=200 URNE_FUZZ_SEED=$RANDOM``.
What the checks found, and the one deliberate exception, are in docs/api.md ("Fuzzing").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core.transport import Response
from schemathesis.python import asgi
from schemathesis.schemas import BaseSchema

from tests.e2e.scenario import ORGANISER, login
from urne.gateway.problems import PROBLEM_JSON
from urne.platform.settings import EmbeddedSettings
from urne.runtime.embedded import build_app

pytestmark = pytest.mark.unit

# Small and fixed by default: the suite stays quick (2 cores) and a failure reproduces.
EXAMPLES = int(os.environ.get("URNE_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("URNE_FUZZ_SEED", "20261129"))
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def fuzz_config(access_token: str | None) -> SchemathesisConfig:
    config: dict[str, Any] = {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "operations": [{
            # Deliberate: sign-in refuses addresses at special-use domains (RFC 6761: .test,
            # .invalid, .local, ...) that no code could reach, while the OpenAPI `email`
            # format accepts them and schemathesis generates `…@….test`. Pinned by
            # test_app.py::test_sign_in_refuses_addresses_no_code_could_reach.
            "include-path": ["/v1/auth/codes", "/v1/auth/tokens"],
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }, {
            # Deliberate: poll rules have cross-field constraints JSON Schema cannot state
            # (min_choices <= max_choices <= options, distinct grades, a budget for every
            # project's district, ...): schema-valid rules may still be a 422, with the
            # reason. Pinned by tests/unit/test_counting_rules.py.
            "include-operation-id": ["consultations-create_poll", "polls-update_poll"],
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }, {
            # Deliberate, likewise: a calendar's steps must follow each other without
            # overlapping, and a time zone must be an IANA name this machine knows, which
            # JSON Schema cannot state (or only as a ~600-name enum). Pinned by
            # tests/unit/test_steps.py.
            "include-operation-id": ["consultations-create_consultation",
                                     "consultations-update_consultation"],
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }],
    }
    if access_token:
        # As configured auth, not a plain header: the ignored_auth check then also replays
        # an accepted request without it and with a wrong one, and expects them refused.
        config["auth"] = {"openapi": {"HTTPBearer": {"bearer": access_token}}}
    return SchemathesisConfig.from_dict(config)


def documented_codes() -> dict[str, set[int]]:
    """``code -> statuses`` from the error table of docs/api.md (a code may come with
    more than one: ``schedule_in_past`` is a 422 when set, a 409 at a late opening)."""
    table = API_DOC.read_text().split("## Errors", 1)[1]
    codes: dict[str, set[int]] = {}
    for status, cell in re.findall(r"^\| (\d{3}) \| (.+) \|$", table, re.MULTILINE):
        for code in re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", cell)):
            codes.setdefault(code, set()).add(int(status))
    return codes


DOCUMENTED = documented_codes()


def problem_code_is_documented(ctx: Any, response: Response, case: Case) -> None:
    """A problem's stable ``code`` is one docs/api.md lists, under the status it came with."""
    if not response.headers.get("content-type", [""])[0].startswith(PROBLEM_JSON):
        return
    body = response.json()
    assert response.status_code == body["status"] in DOCUMENTED.get(body["code"], set()), (
        f"{response.status_code} {body['code']!r} is not in the error table of docs/api.md")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32.5 renames the running test through ``node._nodeid``, which pytest
    # 9.2 no longer has (it keeps ``_id``): give it one to read, or from_fixture fails
    # with an AttributeError before sending anything.
    request.node._nodeid = request.node.nodeid


@pytest.fixture(params=["anonymous", "organiser"])
def api(request: pytest.FixtureRequest, settings: EmbeddedSettings,
        outbox: Path) -> Iterator[BaseSchema]:
    app = build_app(settings)
    token = None
    if request.param == "organiser":
        # Not `with TestClient(app)`: that would run the lifespan, whose end closes the bus.
        with closing(TestClient(app)) as http:
            token = login(http, outbox, ORGANISER)["Authorization"].removeprefix("Bearer ")
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=fuzz_config(token))
    # from_asgi started the app's lifespan for the rest of the process: end it here.
    asgi.shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@hypothesis.settings(database=None)  # no example database in the checkout
def test_every_operation_conforms_to_the_openapi_document(case: Case) -> None:
    case.call_and_validate(additional_checks=[problem_code_is_documented])
