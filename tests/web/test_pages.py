"""The web pages over the embedded profile, without a browser (TestClient over HTTPS, so
the Secure cookies travel): a participant signs in by code, votes, votes again, reads
the receipt and finds the tracker in the published record; in French by default and in
English; every form refused without its CSRF token, changing nothing. The same flows in
Chromium: test_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import open_poll, read_code, wait_for
from urne.platform.settings import EmbeddedSettings
from urne.runtime.embedded import build_app

pytestmark = pytest.mark.integration

RANKING = {"method": "ranking", "question": "Quel parc d'abord ?", "max_ranks": 2,
           "options": [{"id": "a", "title": "Gayeulles"}, {"id": "b", "title": "Thabor"},
                       {"id": "c", "title": "Bréquigny"}]}


@pytest.fixture
def settings(tmp_path: Path) -> EmbeddedSettings:
    return EmbeddedSettings(data_dir=tmp_path / "data", environment="test")


@pytest.fixture
def web(settings: EmbeddedSettings) -> Iterator[TestClient]:
    with TestClient(build_app(settings), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def outbox(settings: EmbeddedSettings) -> Path:
    return settings.outbox_dir / "email.jsonl"


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field"
    return found.group(1)


def sign_in(web: TestClient, outbox: Path, email: str, next_: str = "/") -> None:
    page = web.get(f"/sign-in?next={next_}")
    assert page.status_code == 200
    csrf = field(page.text, "csrf")
    sent = web.post("/sign-in", data={"csrf": csrf, "email": email, "next": next_})
    assert sent.status_code == 200 and 'name="code"' in sent.text, sent.text
    done = web.post("/sign-in/code", data={"csrf": csrf, "email": email, "next": next_,
                                           "code": read_code(outbox, email)},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == next_
    cookie = next(v for k, v in done.headers.multi_items()
                  if k == "set-cookie" and v.startswith("urne_session="))
    assert {"HttpOnly", "Secure", "SameSite=lax"} <= {p.strip() for p in cookie.split(";")}


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
