"""Results visibility and exports at the edge: the routes that show a result (summary,
exports, audit) refuse what the tally refuses, with its problem; the organiser's
``/publish``; live counts; the flat export of each voting method, CSV and JSON. And the
electorate, a setting of the poll frozen at opening as its results visibility is."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import bearer, login, wait_until
from tests.gateway.test_app import Answer, ok, problem, replied
from urne.contracts import commands
from urne.counting import count, rules_adapter
from urne.gateway import exports, public
from urne.messaging.kernel import RawEnvelope, RawReply

pytestmark = pytest.mark.unit

YES_NO = {"method": "yes_no_abstain", "question": "Piétonniser la place ?"}
YES = {"method": "yes_no_abstain", "answer": "yes"}
NO = {"method": "yes_no_abstain", "answer": "no"}
CSV = "text/csv; charset=utf-8"
# Every route that shows something of a poll's ballots.
SHOWING = ("/v1/polls/{}/results", "/v1/polls/{}/results.csv", "/v1/polls/{}/results.json",
           "/v1/audit/polls/{}/result", "/v1/audit/polls/{}/record",
           "/v1/audit/polls/{}/trackers/{}", "/v1/audit/polls/{}/heads",
           "/v1/audit/polls/{}/consistency?first=1")


def routes(pid: str, tracker: str) -> list[str]:
    return [r.format(pid, tracker) for r in SHOWING]


def result_of(rules: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    """A signed result document's fields the exports read, counted by urne."""
    frozen = rules_adapter.validate_python(rules)
    return {"rules": frozen.model_dump(mode="json"), "rules_hash": "ab" * 32,
            "record": {"size": len(choices), "root": "cd" * 32},
            "computed_at": "2027-01-01T12:00:00+00:00", "tally": count(frozen, choices)}


def parse_csv(text: str) -> list[list[str]]:
    assert text.endswith("\r\n")
    return list(csv.reader(io.StringIO(text, newline="")))


# --- the flat form of each method ---------------------------------------------------------


def test_yes_no_abstain_export() -> None:
    result = result_of(YES_NO, [{"answer": "no"}, {"answer": "no"}, {"answer": "yes"}])
    assert parse_csv(exports.as_csv(result)) == [
        ["option_id", "votes", "winner"], ["yes", "1", "false"], ["no", "2", "true"],
        ["abstain", "0", "false"]]
    exported = exports.as_json("p1", result)
    assert (exported["outcome"], exported["winners"]) == ("rejected", ["no"])
    tied = exports.as_json("p1", result_of(YES_NO, []))
    assert tied["winners"] == [] and not any(r["winner"] for r in tied["rows"])


def test_approval_export_shares_ranks_and_flags_ties() -> None:
    rules = {"method": "approval", "question": "Quels bancs ?", "max_choices": 2, "seats": 1,
             "options": [{"id": "a", "title": "Allée"}, {"id": "b", "title": "=SUM(A1)"},
                         {"id": "c", "title": "Cour"}]}
    result = result_of(rules, [{"approved": ["a", "b"]}, {"approved": ["b"]},
                               {"approved": ["a"]}])
    assert parse_csv(exports.as_csv(result)) == [
        ["rank", "option_id", "title", "approvals", "winner", "tied"],
        ["1", "a", "Allée", "2", "false", "true"],
        ["1", "b", "'=SUM(A1)", "2", "false", "true"],  # no formula in a spreadsheet
        ["3", "c", "Cour", "0", "false", "false"]]
    exported = exports.as_json("p1", result)
    assert exported["rows"][1]["title"] == "=SUM(A1)"  # JSON keeps the text as it is
    assert (exported["outcome"], exported["winners"]) == ("tied", [])


def test_ranking_export() -> None:
    rules = {"method": "ranking", "question": "Classez", "max_ranks": 2,
             "options": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"},
                         {"id": "c", "title": "C"}]}
    result = result_of(rules, [{"ranking": ["b", "a"]}, {"ranking": ["b"]},
                               {"ranking": ["c", "a"]}])
    columns, rows = exports.flatten(result)
    assert columns == ["rank", "option_id", "title", "points", "first_preferences", "winner",
                       "tied"]
    assert [(r["rank"], r["option_id"], r["points"], r["first_preferences"], r["winner"])
            for r in rows] == [(1, "b", 4, 2, True), (2, "a", 2, 0, False),
                               (2, "c", 2, 1, False)]


def test_majority_judgment_export_has_a_column_per_grade() -> None:
    rules = {"method": "majority_judgment", "question": "Jugez",
             "grades": ["très bien", "bien", "-passable"],
             "options": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]}
    result = result_of(rules, [{"grades": {"a": "très bien", "b": "bien"}},
                               {"grades": {"a": "bien", "b": "-passable"}},
                               {"grades": {"a": "bien", "b": "bien"}}])
    table = parse_csv(exports.as_csv(result))
    assert table == [
        ["rank", "option_id", "title", "majority_grade", "grade:très bien", "grade:bien",
         "grade:-passable", "winner", "tied"],
        ["1", "a", "A", "bien", "1", "2", "0", "true", "false"],
        ["2", "b", "B", "bien", "0", "2", "1", "false", "false"]]
    empty = exports.flatten(result_of(rules, []))[1]
    assert [r["majority_grade"] for r in empty] == [None, None]
    assert parse_csv(exports.as_csv(result_of(rules, [])))[1][3] == ""


def test_budget_export_is_per_district() -> None:
    rules = {"method": "budget", "question": "Quels projets ?", "currency": "EUR",
             "budgets": {"nord": 100, "sud": 50},
             "projects": [{"id": "n1", "title": "Parc", "cost": 80, "district": "nord"},
                          {"id": "n2", "title": "Bancs", "cost": 30, "district": "nord"},
                          {"id": "s1", "title": "Fontaine", "cost": 50, "district": "sud"}]}
    result = result_of(rules, [{"projects": ["n1"], "district": "nord"},
                               {"projects": ["n1", "n2"], "district": "nord"},
                               {"projects": ["s1"], "district": "sud"}])
    assert parse_csv(exports.as_csv(result)) == [
        ["district", "district_budget", "currency", "rank", "project_id", "title", "cost",
         "votes", "selected"],
        ["nord", "100", "EUR", "1", "n1", "Parc", "80", "2", "true"],
        ["nord", "100", "EUR", "2", "n2", "Bancs", "30", "1", "false"],  # 30 > 20 remaining
        ["sud", "50", "EUR", "1", "s1", "Fontaine", "50", "1", "true"]]
    single = {**rules, "budgets": None, "budget": 100,
              "projects": [{**p, "district": None} for p in rules["projects"]]}
    rows = exports.flatten(result_of(single, [{"projects": ["n2", "s1"]}]))[1]
    assert {r["district"] for r in rows} == {"*"}
    assert exports.as_json("p1", result_of(single, []))["winners"] == []


def test_the_download_name_is_safe_in_a_header() -> None:
    assert exports.filename("3f2a", "csv") == "poll-3f2a-results.csv"
    assert exports.filename('a"b\r\né', "json") == "poll-a_b___-results.json"


# --- the routes, over stubbed services --------------------------------------------------------


def test_every_showing_route_passes_on_the_tallys_refusal(
        stubbed: Callable[[Answer], TestClient]) -> None:
    asked: list[str] = []

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        asked.append(service)
        return {"ok": False, "error": {"status": 409, "code": "result_embargoed",
                                       "detail": "embargoed"}}

    client = stubbed(answer)
    for path in routes("p1", "T1"):
        problem(client.get(path), 409, "result_embargoed")
    problem(client.get("/v1/polls/p1/results/live"), 409, "result_embargoed")
    assert set(asked) == {"tally"}  # the tally decides, the gateway does not


def test_exports_of_a_published_result(stubbed: Callable[[Answer], TestClient]) -> None:
    result = {**result_of(YES_NO, [{"answer": "yes"}]), "poll_id": "p1"}

    def answer(service: str, envelope: RawEnvelope) -> RawReply:
        assert envelope["type"] == commands.GetResult.TYPE
        return replied({"result": result, "signature": "s", "key_id": "k",
                        "algorithm": "Ed25519"})

    client = stubbed(answer)
    r = client.get("/v1/polls/p1/results.csv")
    assert (r.status_code, r.headers["content-type"]) == (200, CSV)
    assert r.headers["content-disposition"] == 'attachment; filename="poll-p1-results.csv"'
    assert parse_csv(r.text)[0] == ["option_id", "votes", "winner"]
    r = client.get("/v1/polls/p1/results.json")
    assert r.headers["content-disposition"] == 'attachment; filename="poll-p1-results.json"'
    exported = ok(r, 200, public.ResultsExportPublic)
    assert exported["format"] == "urne.results-export.v1"
    assert (exported["outcome"], exported["ballots"], exported["record_root"]) == \
        ("adopted", 1, "cd" * 32)


def test_the_openapi_document_declares_the_csv(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/polls/{poll_id}/results.csv"]["get"]
    assert list(op["responses"]["200"]["content"]) == ["text/csv"]
    assert "/v1/polls/{poll_id}/publish" in spec["paths"]
    assert "/v1/polls/{poll_id}/results/live" in spec["paths"]


# --- the whole path, in-process (embedded profile) --------------------------------------------


def open_poll(client: TestClient, org: dict[str, str], visibility: str) -> str:
    cid = client.post("/v1/consultations", headers=org, json={"title": "Place"}).json()["id"]
    assert client.post(f"/v1/consultations/{cid}/publish", headers=org).status_code == 200
    poll = ok(client.post(f"/v1/consultations/{cid}/polls", headers=org,
                          json={"rules": YES_NO, "results_visibility": visibility}),
              201, public.PollPublic)
    assert (poll["status"], poll["results_visibility"]) == ("draft", visibility)
    assert client.post(f"/v1/polls/{poll['id']}/open", headers=org).status_code == 200
    return str(poll["id"])


def cast(client: TestClient, outbox: Path, pid: str, email: str,
         choice: dict[str, str]) -> dict[str, Any]:
    user = login(client, outbox, email)
    token = client.post(f"/v1/polls/{pid}/voting-token", headers=user).json()["voting_token"]
    r = client.post(f"/v1/polls/{pid}/ballots", headers=bearer(token), json={"choice": choice})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_embargoed_poll_end_to_end_in_process(
        client: TestClient, organiser: dict[str, str], participant: dict[str, str],
        outbox: Path) -> None:
    pid = open_poll(client, organiser, "embargoed")
    rules = ok(client.get(f"/v1/audit/polls/{pid}/rules"), 200, public.FrozenRulesPublic)
    assert rules["results_visibility"] == "embargoed"
    receipt = cast(client, outbox, pid, "alice@example.org", YES)
    problem(client.post(f"/v1/polls/{pid}/publish", headers=organiser), 409, "poll_open")
    assert client.post(f"/v1/polls/{pid}/close", headers=organiser).status_code == 200
    for path in routes(pid, receipt["tracker"]):
        problem(client.get(path), 409, "result_embargoed")
    problem(client.get(f"/v1/polls/{pid}/results/live"), 409, "results_hidden")
    problem(client.post(f"/v1/polls/{pid}/publish", headers=participant), 403, "forbidden")
    problem(client.post(f"/v1/polls/{pid}/publish"), 401, "missing_token")
    assert client.get(f"/v1/polls/{pid}").json()["status"] == "closed"

    published = ok(client.post(f"/v1/polls/{pid}/publish", headers=organiser),
                   200, public.PollPublic)
    assert published["status"] == "published"
    assert ok(client.post(f"/v1/polls/{pid}/publish", headers=organiser),
              200, public.PollPublic) == published  # again: nothing changes
    summary = ok(client.get(f"/v1/polls/{pid}/results"), 200, public.ResultPublic)
    assert summary["tally"]["counts"] == {"yes": 1, "no": 0, "abstain": 0}
    r = client.get(f"/v1/polls/{pid}/results.csv")
    assert (r.status_code, r.headers["content-type"]) == (200, CSV)
    assert parse_csv(r.text)[1] == ["yes", "1", "true"]
    ok(client.get(f"/v1/polls/{pid}/results.json"), 200, public.ResultsExportPublic)
    record = ok(client.get(f"/v1/audit/polls/{pid}/record"), 200, public.BallotRecordPublic)
    assert [e["tracker"] for e in record["entries"]] == [receipt["tracker"]]
    ok(client.get(f"/v1/audit/polls/{pid}/trackers/{receipt['tracker']}"), 200,
       public.InclusionProofPublic)
    # One ballot: the head signed at publication is at size 1, and proves itself.
    [head] = ok(client.get(f"/v1/audit/polls/{pid}/heads"), 200,
                public.TreeHeadsPublic)["heads"]
    assert (head["head"]["size"], head["head"]["root"]) == (1, record["root"])
    proof = ok(client.get(f"/v1/audit/polls/{pid}/consistency?first=1"), 200,
               public.ConsistencyProofPublic)
    assert (proof["second"], proof["second_root"], proof["path"]) == (1, record["root"], [])
    problem(client.get(f"/v1/audit/polls/{pid}/consistency?first=2"), 404,
            "tree_head_not_found")
    for query in ("", "?first=0", "?first=x", "?first=1&second=0"):
        problem(client.get(f"/v1/audit/polls/{pid}/consistency{query}"), 422,
                "invalid_request")


def test_an_after_close_poll_is_not_published_by_hand(
        client: TestClient, organiser: dict[str, str]) -> None:
    pid = open_poll(client, organiser, "after_close")
    problem(client.post(f"/v1/polls/{pid}/publish", headers=organiser), 409,
            "poll_not_embargoed")
    problem(client.get(f"/v1/polls/{pid}/results/live"), 409, "results_hidden")


def test_live_counts_in_process(client: TestClient, organiser: dict[str, str],
                                outbox: Path) -> None:
    pid = open_poll(client, organiser, "live")
    cast(client, outbox, pid, "alice@example.org", YES)
    cast(client, outbox, pid, "bob@example.org", YES)
    cast(client, outbox, pid, "bob@example.org", NO)  # bob's revote replaces his yes

    def counts() -> dict[str, int]:
        live = ok(client.get(f"/v1/polls/{pid}/results/live"), 200, public.LiveResultPublic)
        return dict(live["tally"]["counts"])

    assert wait_until(lambda: counts() == {"yes": 1, "no": 1, "abstain": 0}, timeout=10)
    live = client.get(f"/v1/polls/{pid}/results/live").json()
    assert (live["ballots"], live["ballots_received"]) == (2, 3)
    # The signed result is still for after the close.
    problem(client.get(f"/v1/polls/{pid}/results"), 409, "result_not_published")
    problem(client.get(f"/v1/polls/{pid}/results.csv"), 409, "result_not_published")


def test_the_setting_is_checked_and_frozen(client: TestClient,
                                           organiser: dict[str, str]) -> None:
    cid = client.post("/v1/consultations", headers=organiser, json={"title": "P"}).json()["id"]
    problem(client.post(f"/v1/consultations/{cid}/polls", headers=organiser,
                        json={"rules": YES_NO, "results_visibility": "whenever"}),
            422, "invalid_request")
    r = client.post(f"/v1/consultations/{cid}/polls", headers=organiser, json={"rules": YES_NO})
    pid = r.json()["id"]
    assert r.json()["results_visibility"] == "after_close"
    edited = client.patch(f"/v1/polls/{pid}", headers=organiser,
                          json={"rules": YES_NO, "results_visibility": "live"}).json()
    assert edited["results_visibility"] == "live"
    assert client.patch(f"/v1/polls/{pid}", headers=organiser,
                        json={"rules": YES_NO}).json()["results_visibility"] == "live"


def test_the_electorate_is_checked_changed_while_a_draft_and_frozen(
        client: TestClient, organiser: dict[str, str]) -> None:
    cid = client.post("/v1/consultations", headers=organiser, json={"title": "P"}).json()["id"]
    assert client.post(f"/v1/consultations/{cid}/publish", headers=organiser).status_code == 200
    problem(client.post(f"/v1/consultations/{cid}/polls", headers=organiser,
                        json={"rules": YES_NO, "electorate": "residents"}),
            422, "invalid_request")
    poll = ok(client.post(f"/v1/consultations/{cid}/polls", headers=organiser,
                          json={"rules": YES_NO}), 201, public.PollPublic)
    assert poll["electorate"] == "open"
    census = ok(client.post(f"/v1/consultations/{cid}/polls", headers=organiser,
                            json={"rules": YES_NO, "electorate": "census"}),
                201, public.PollPublic)
    assert census["electorate"] == "census"
    pid = poll["id"]
    problem(client.patch(f"/v1/polls/{pid}", headers=organiser,
                         json={"rules": YES_NO, "electorate": "residents"}),
            422, "invalid_request")
    edited = ok(client.patch(f"/v1/polls/{pid}", headers=organiser,
                             json={"rules": YES_NO, "electorate": "census"}),
                200, public.PollPublic)
    assert edited["electorate"] == "census"
    for body in ({"rules": YES_NO}, {"rules": YES_NO, "electorate": None}):  # unchanged
        assert client.patch(f"/v1/polls/{pid}", headers=organiser,
                            json=body).json()["electorate"] == "census"
    opened = ok(client.post(f"/v1/polls/{pid}/open", headers=organiser), 200, public.PollPublic)
    assert opened["electorate"] == "census"
    problem(client.patch(f"/v1/polls/{pid}", headers=organiser,
                         json={"rules": YES_NO, "electorate": "open"}),
            409, "poll_rules_frozen")
    assert ok(client.get(f"/v1/polls/{pid}"), 200, public.PollPublic)["electorate"] == "census"
