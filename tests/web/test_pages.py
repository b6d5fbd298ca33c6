"""The web pages over the embedded profile, without a browser (TestClient over HTTPS, so
the Secure cookies travel): a participant signs in by code, votes, votes again, reads
the receipt and finds the tracker in the published record; in French by default and in
English; every form refused without its CSRF token, changing nothing. The same flows in
Chromium: test_browser.py."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.e2e.scenario import ADMIN, ORGANISER, bearer, login, open_poll, wait_for
from tests.web.pages import field, sign_in
from urne.runtime.cli import app

pytestmark = pytest.mark.integration

RANKING = {"method": "ranking", "question": "Quel parc d'abord ?", "max_ranks": 2,
           "options": [{"id": "a", "title": "Gayeulles"}, {"id": "b", "title": "Thabor"},
                       {"id": "c", "title": "Bréquigny"}]}


def test_a_participant_votes_votes_again_and_finds_the_tracker(web: TestClient,
                                                              outbox: Path) -> None:
    state = open_poll(web, outbox)
    home = web.get("/")
    assert home.status_code == 200 and '<html lang="fr">' in home.text
    assert "Parc des Gayeulles" in home.text and "Se connecter" in home.text
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert "script-src" not in home.headers["content-security-policy"]  # 'self' only

    path = f"/polls/{state.poll_id}"
    sign_in(web, outbox, "lea@example.org", path)
    form = web.get(path)
    assert "Déposer mon bulletin" in form.text
    key, csrf = field(form.text, "idempotency_key"), field(form.text, "csrf")
    first = web.post(f"{path}/ballot", data={"csrf": csrf, "idempotency_key": key,
                                              "answer": "yes"})
    assert first.status_code == 201, first.text
    tracker = re.search(r'<code id="tracker">([^<]+)</code>', first.text).group(1)
    again = web.post(f"{path}/ballot", data={"csrf": csrf, "idempotency_key": key,
                                              "answer": "yes"})  # the form sent twice
    assert re.search(r'<code id="tracker">([^<]+)</code>', again.text).group(1) == tracker

    form = web.get(path)
    revote = web.post(f"{path}/ballot", data={
        "csrf": csrf, "idempotency_key": field(form.text, "idempotency_key"), "answer": "no"})
    assert revote.status_code == 201 and "seul celui-ci compte" in revote.text
    last = re.search(r'<code id="tracker">([^<]+)</code>', revote.text).group(1)
    assert last != tracker

    early = web.get(f"{path}/tracker", params={"tracker": last})
    assert 'id="tracker-missing"' in early.text  # not published yet
    assert web.post(f"/v1/polls/{state.poll_id}/close", headers=state.organiser
                    ).status_code == 200
    result = wait_for(lambda: web.get(f"/v1/polls/{state.poll_id}/results"), 200)
    assert result.json()["tally"]["counts"] == {"yes": 0, "no": 1, "abstain": 0}
    # The record logs every accepted ballot, the replaced one too (the count has one).
    for mine in (tracker, last):
        found = web.get(f"{path}/tracker", params={"tracker": mine})
        assert 'id="tracker-found"' in found.text, found.text
    stranger = web.get(f"{path}/tracker", params={"tracker": "0" * len(last)})
    assert 'id="tracker-missing"' in stranger.text


def test_english_on_request_and_by_choice(web: TestClient) -> None:
    assert "Sign in" in web.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "Se connecter" in web.get("/", headers={"Accept-Language": "de, fr;q=0.5"}).text
    switched = web.get("/language/en", params={"next": "/sign-in"}, follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/sign-in"
    page = web.get("/sign-in")
    assert '<html lang="en">' in page.text and "Send me a code" in page.text
    # Only this site's paths: never an open redirect.
    away = web.get("/language/fr", params={"next": "//evil.example/"}, follow_redirects=False)
    assert away.headers["location"] == "/"


def test_pages_and_their_script_and_style_carry_the_security_headers(web: TestClient) -> None:
    page = web.get("/", headers={"Accept-Language": "fr"})
    assert 'hreflang="en">English</a>' in page.text  # the other language, by its name
    for r in (page, web.get("/static/urne.css"), web.get("/static/budget.js")):
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["referrer-policy"] == "same-origin"


def test_every_form_needs_its_csrf_token_and_a_refused_one_changes_nothing(
        web: TestClient, outbox: Path) -> None:
    state = open_poll(web, outbox)
    path = f"/polls/{state.poll_id}"
    refused = web.post("/sign-in", data={"email": "max@example.org", "next": "/"})
    assert refused.status_code == 403
    assert not outbox.exists() or "max@example.org" not in outbox.read_text()
    sign_in(web, outbox, "max@example.org", path)
    form = web.get(path)
    forged = web.post(f"{path}/ballot", data={
        "csrf": "not-the-cookie", "idempotency_key": field(form.text, "idempotency_key"),
        "answer": "yes"})
    assert forged.status_code == 403
    real = web.post(f"{path}/ballot", data={
        "csrf": field(form.text, "csrf"), "idempotency_key": field(form.text,
                                                                   "idempotency_key"),
        "answer": "yes"})
    assert real.status_code == 201 and "seul celui-ci compte" not in real.text  # the first


def test_a_ranking_form_with_one_rank_twice_is_sent_back_with_why(web: TestClient,
                                                                  outbox: Path) -> None:
    state = open_poll(web, outbox, rules=RANKING)
    path = f"/polls/{state.poll_id}"
    sign_in(web, outbox, "noe@example.org", path)
    form = web.get(path)
    sent = {"csrf": field(form.text, "csrf"),
            "idempotency_key": field(form.text, "idempotency_key")}
    twice = web.post(f"{path}/ballot", data={**sent, "rank-a": "1", "rank-b": "1"})
    assert twice.status_code == 422 and "une seule option" in twice.text
    assert 'value="1" selected' in twice.text  # what was chosen stays chosen
    ranked = web.post(f"{path}/ballot", data={**sent, "rank-a": "2", "rank-c": "1"})
    assert ranked.status_code == 201, ranked.text


def test_voting_signed_out_asks_to_sign_in(web: TestClient, outbox: Path) -> None:
    state = open_poll(web, outbox)
    form = web.get(f"/polls/{state.poll_id}")
    assert "Connectez-vous pour voter." in form.text
    web.cookies.clear()
    form = web.get(f"/polls/{state.poll_id}")
    r = web.post(f"/polls/{state.poll_id}/ballot", data={
        "csrf": field(form.text, "csrf"), "idempotency_key": "k" * 32, "answer": "yes"})
    assert r.status_code == 401 and 'name="email"' in r.text


BUDGET = {"method": "budget", "question": "Quels projets ?", "budget": 100,
          "projects": [{"id": "bancs", "title": "Des bancs", "cost": 30},
                       {"id": "arbres", "title": "Des arbres", "cost": 60},
                       {"id": "piste", "title": "Une piste", "cost": 80}]}


def test_the_result_page_shows_the_export_a_chart_and_how_to_check_it(
        web: TestClient, outbox: Path, tmp_path: Path) -> None:
    state = open_poll(web, outbox, rules=BUDGET)
    path = f"/polls/{state.poll_id}"
    waiting = web.get(f"{path}/results")
    assert waiting.status_code == 409 and "pas encore publié" in waiting.text
    for email, projects in (("a@example.org", ["bancs", "arbres"]),
                            ("b@example.org", ["arbres"]), ("c@example.org", ["piste"])):
        voter = login(web, outbox, email)
        token = web.post(f"/v1{path}/voting-token", headers=voter).json()["voting_token"]
        cast = web.post(f"/v1{path}/ballots", headers={**bearer(token), "Idempotency-Key":
                                                       email},
                        json={"choice": {"method": "budget", "projects": projects}})
        assert cast.status_code == 201, cast.text
    assert web.post(f"/v1{path}/close", headers=state.organiser).status_code == 200
    assert wait_for(lambda: web.get(f"/v1{path}/results"), 200).status_code == 200

    page = web.get(f"{path}/results")
    assert page.status_code == 200 and "Bulletins comptés : 3." in page.text
    svg = re.search(r"<svg class=\"chart\".*?</svg>", page.text, re.S)
    assert svg and "<title>Quels projets ?</title>" in svg.group(0)
    # Des arbres (2 votes, 60) is selected first; Des bancs (1 vote, 30) still fits.
    assert re.search(r">2 retenu</text>", svg.group(0)) and ">1 retenu</text>" in svg.group(0)
    rows = re.findall(r"<tr><td>\*</td><td>100</td>.*?</tr>", page.text)
    assert len(rows) == 3
    assert f"urne audit verify --url https://testserver --poll {state.poll_id}" in page.text
    for link in ("/result", "/rules", "/record.ndjson"):
        assert web.get(f"/v1/audit{path}{link}").status_code == 200
    assert web.get(f"/v1{path}/results.csv").status_code == 200

    # The audit bundle, downloaded from the page, checks offline as urne audit fetch's.
    bundle = web.get(f"{path}/audit-bundle.zip")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        archive.extractall(tmp_path)
    folder = tmp_path / f"urne-audit-{state.poll_id}"
    verified = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(folder), "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
    # One byte changed in the record, and the same check fails.
    record = folder / "record.ndjson"
    record.write_bytes(record.read_bytes().replace(b'"bancs"', b'"piste"', 1))
    tampered = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(folder)])
    assert tampered.exit_code != 0


def test_a_participant_submits_a_proposal_and_reads_it(web: TestClient, outbox: Path) -> None:
    organiser = login(web, outbox, ORGANISER)
    now = datetime.now(UTC)
    made = web.post("/v1/consultations", headers=organiser, json={
        "title": "Idées pour le square", "steps": [
            {"kind": "proposals", "starts_at": (now - timedelta(days=1)).isoformat(),
             "ends_at": (now + timedelta(days=7)).isoformat()}]})
    assert made.status_code == 201, made.text
    consultation = made.json()["id"]
    assert web.post(f"/v1/consultations/{consultation}/publish", headers=organiser
                    ).status_code == 200
    path = f"/consultations/{consultation}"
    assert "Connectez-vous pour déposer une proposition." in web.get(path).text
    sign_in(web, outbox, "zoe@example.org", path)
    page = web.get(path)
    assert "Déposer une proposition" in page.text
    csrf = field(page.text, "csrf")
    empty = web.post(f"{path}/proposals", data={"csrf": csrf, "title": " ",
                                                 "body": "Gardez-moi"})
    assert empty.status_code == 422 and "Gardez-moi</textarea>" in empty.text
    sent = web.post(f"{path}/proposals", follow_redirects=False, data={
        "csrf": csrf, "title": "Un potager",
        "body": "Des **bacs** au square.\n\n<script>alert(1)</script>"})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/proposals/")
    shown = web.get(sent.headers["location"])
    assert "<h1>Un potager</h1>" in shown.text and "<strong>bacs</strong>" in shown.text
    assert "<script>alert" not in shown.text  # the API's sanitised rendering
    listed = web.get(path)
    assert f'href="{sent.headers["location"]}"' in listed.text


OPTIONS = [{"id": "a", "title": "Gayeulles"}, {"id": "b", "title": "Thabor"},
           {"id": "c", "title": "Bréquigny"}]
# Each method's rules, the form a participant fills, and the tally it must give (worked
# out by hand: one ballot).
BY_METHOD = [
    ({"method": "approval", "question": "Quels parcs ?", "options": OPTIONS,
      "max_choices": 2}, {"approved": ["a", "c"]}, "counts", {"a": 1, "b": 0, "c": 1}),
    ({"method": "ranking", "question": "Quel ordre ?", "options": OPTIONS, "max_ranks": 3},
     {"rank-a": "3", "rank-b": "1", "rank-c": "2"}, "points", {"a": 1, "b": 3, "c": 2}),
    ({"method": "majority_judgment", "question": "Quelles mentions ?", "options": OPTIONS,
      "grades": ["Bien", "Passable", "Insuffisant"]},
     {"grade-a": "Bien", "grade-b": "Insuffisant", "grade-c": "Passable"}, "majority_grade",
     {"a": "Bien", "b": "Insuffisant", "c": "Passable"}),
]


@pytest.mark.parametrize(("rules", "form", "key", "tally"), BY_METHOD,
                         ids=[r["method"] for r, *_ in BY_METHOD])
def test_each_method_s_form_casts_the_ballot_it_shows(
        web: TestClient, outbox: Path, rules: dict, form: dict, key: str,
        tally: dict) -> None:
    state = open_poll(web, outbox, rules=rules)
    path = f"/polls/{state.poll_id}"
    csrf = sign_in(web, outbox, "yan@example.org", path)
    page = web.get(path)
    for name in form:  # every field sent is one the page shows
        assert f'name="{name}"' in page.text, name
    cast = web.post(f"{path}/ballot", data={
        "csrf": csrf, "idempotency_key": field(page.text, "idempotency_key"), **form})
    assert cast.status_code == 201, cast.text
    assert web.post(f"/v1{path}/close", headers=state.organiser).status_code == 200
    result = wait_for(lambda: web.get(f"/v1{path}/results"), 200).json()
    assert result["tally"][key] == tally
    shown = web.get(f"{path}/results")
    assert shown.status_code == 200 and "Bulletins comptés : 1." in shown.text


def test_every_form_route_refuses_a_post_without_its_csrf_token(web: TestClient,
                                                                  outbox: Path) -> None:
    """Whatever the page, signed in as an admin (whom no role stops): a form posted
    without the CSRF token, or with another one, is refused for that reason alone."""
    from urne.gateway.web import desk, organiser, participant, results

    sign_in(web, outbox, ADMIN)
    posts = [route.path for module in (participant, results, organiser, desk)
             for route in module.router.routes
             if isinstance(route, APIRoute) and "POST" in route.methods]
    assert len(posts) >= 14
    for path in posts:
        url = re.sub(r"\{(\w+)\}", lambda m: "open" if m.group(1) == "action" else
                     "0" * 32, path)
        for data in ({}, {"csrf": "not-this-browser-s"}):
            r = web.post(url, data=data, follow_redirects=False)
            assert r.status_code == 403 and "Ce formulaire a expiré" in r.text, (url, data)
