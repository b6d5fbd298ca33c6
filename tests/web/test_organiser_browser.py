"""The organiser's pages in Chromium, against ``urne up``: signed in by code, an organiser
creates a consultation, publishes it, creates a yes/no/abstain poll and opens it; two
participants vote (through the API); the organiser sees the turnout, closes the poll and
reaches its published result. axe-core finds nothing serious or critical on the organiser
pages, in French and in English, and they fit a 360 px screen."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.scenario import ORGANISER, OpenPoll, login, read_code, vote
from tests.support.embedded import Embedded
from tests.web.browser import axe_violations, describe, new_page

pytestmark = pytest.mark.e2e

QUESTION = "Faut-il fermer la rue aux voitures le dimanche ?"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    # On 127.0.0.1 as `make up` serves it: browsers treat loopback as a secure origin
    # and keep the Secure session cookie over plain HTTP there.
    running = Embedded(tmp_path_factory.mktemp("organiser-web") / "data")
    running.start()
    yield running
    running.stop()


@dataclass
class Organised:
    consultation_id: str
    poll_id: str  # open, one ballot cast
    token: str  # the organiser's access token


@pytest.fixture(scope="module")
def organised(system: Embedded) -> Organised:
    """A consultation with a proposal, a draft budget poll and an open poll voted in,
    made through the API, for the pages to show."""
    with httpx.Client(base_url=system.base, timeout=30) as http:
        org = login(http, system.outbox, ORGANISER)
        cid = http.post("/v1/consultations", headers=org, json={
            "title": "Budget du quartier", "description": "Que financer ?"}).json()["id"]
        assert http.post(f"/v1/consultations/{cid}/publish", headers=org).status_code == 200
        http.post(f"/v1/consultations/{cid}/proposals", headers=org,
                  json={"title": "Des bancs", "body": "Au parc."})
        http.post(f"/v1/consultations/{cid}/polls", headers=org, json={"rules": {
            "method": "budget", "question": "Quels projets ?", "budget": 1000,
            "projects": [{"id": "bancs", "title": "Des bancs", "cost": 400}]}})
        poll = http.post(f"/v1/consultations/{cid}/polls", headers=org, json={
            "rules": {"method": "yes_no_abstain", "question": "Un marché ?"}}).json()["id"]
        assert http.post(f"/v1/polls/{poll}/open", headers=org).status_code == 200
        vote(http, system.outbox, OpenPoll(poll, org), "zoe@example.org", "no")
    return Organised(cid, poll, org["Authorization"].removeprefix("Bearer "))


def signed_in_as_organiser(page: Page, system: Embedded, organised: Organised) -> None:
    """The session cookie the sign-in form sets, set with the organiser's token."""
    page.context.add_cookies([
        {"name": "urne_session", "value": organised.token, "url": system.base,
         "httpOnly": True, "sameSite": "Lax"},
        {"name": "urne_role", "value": "organiser", "url": system.base, "httpOnly": True,
         "sameSite": "Lax"}])


def reload_until(page: Page, check: str, text: str, timeout: float = 30) -> None:
    """Reload the page until ``check`` (a selector) reads ``text``."""
    deadline = time.monotonic() + timeout
    while page.locator(check).inner_text() != text:
        assert time.monotonic() < deadline, (check, page.locator(check).inner_text(), text)
        time.sleep(0.3)
        page.reload()


def test_an_organiser_runs_a_poll_from_sign_in_to_its_result(page: Page,
                                                             system: Embedded) -> None:
    page.goto(system.base + "/organiser")
    # Signed out: the sign-in form, which comes back here.
    page.get_by_label("Adresse e-mail").fill(ORGANISER)
    page.get_by_role("button", name="M'envoyer un code").click()
    page.get_by_label("Code").fill(read_code(system.outbox, ORGANISER))
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Vos consultations")).to_be_visible()
    expect(page.get_by_role("link", name="Organiser", exact=True)).to_be_visible()  # the menu

    page.get_by_label("Titre", exact=True).fill("Rue Saint-Malo")
    page.get_by_label("Description").fill("Une rue piétonne le dimanche ?")
    page.get_by_role("button", name="Créer la consultation").click()
    expect(page.get_by_role("heading", name="Rue Saint-Malo", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("créée, en brouillon")
    page.get_by_role("button", name="Publier la consultation").click()
    expect(page.get_by_role("status")).to_contain_text("La consultation est publiée")
    expect(page.get_by_role("link", name="Sa page publique")).to_be_visible()

    page.get_by_label(re.compile("^Oui, non ou abstention")).check()
    page.get_by_label("Question", exact=True).fill(QUESTION)
    page.get_by_role("button", name="Créer le vote").click()
    expect(page.get_by_role("heading", name=QUESTION, level=1)).to_be_visible()
    expect(page.locator("#poll-status")).to_have_text("Brouillon")
    page.get_by_role("button", name="Ouvrir le vote").click()
    expect(page.locator("#poll-status")).to_have_text("Ouvert")
    poll_id = re.search(r"/organiser/polls/([0-9a-f]+)", page.url).group(1)  # type: ignore[union-attr]

    with httpx.Client(base_url=system.base, timeout=30) as http:
        state = OpenPoll(poll_id, {})
        vote(http, system.outbox, state, "anne@example.org", "yes")
        vote(http, system.outbox, state, "bruno@example.org", "no")
    reload_until(page, "#turnout-voters", "2")
    table = page.get_by_role("table", name=re.compile("Participation par quartier"))
    expect(table.get_by_role("columnheader", name="En ligne")).to_be_visible()
    expect(table.get_by_role("row", name=re.compile("Total"))).to_contain_text("2")

    page.get_by_role("button", name="Clore le vote").click()
    expect(page.get_by_role("status")).to_contain_text("Le vote est clos")
    expect(page.get_by_role("button", name="Clore le vote")).to_have_count(0)
    reload_until(page, "#poll-status", "Résultat publié")
    page.get_by_role("link", name="La page publique du résultat").click()
    expect(page).to_have_url(f"{system.base}/polls/{poll_id}/results")
    expect(page.get_by_role("heading", level=1)).to_contain_text(QUESTION)
    with httpx.Client(base_url=system.base, timeout=30) as http:
        result = http.get(f"/v1/polls/{poll_id}/results")
    assert result.status_code == 200, result.text
    assert result.json()["tally"]["counts"] == {"yes": 1, "no": 1, "abstain": 0}


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_organiser_pages_have_no_serious_accessibility_fault(
        chromium: Browser, system: Embedded, organised: Organised, language: str) -> None:
    with new_page(chromium, "fr-FR" if language == "fr" else "en-GB") as page:
        signed_in_as_organiser(page, system, organised)
        checked = []
        for path in ("/organiser", f"/organiser/consultations/{organised.consultation_id}",
                     f"/organiser/polls/{organised.poll_id}"):
            page.goto(system.base + path)
            assert page.locator("html").get_attribute("lang") == language
            expect(page.locator("h1")).to_have_count(1)
            violations = axe_violations(page)
            assert violations == [], f"{path}: {describe(violations)}"
            checked.append(path)
        # A poll form sent back with why: the alert, the values kept.
        page.goto(system.base + f"/organiser/consultations/{organised.consultation_id}")
        page.locator("#method-budget").check()
        page.locator("#poll-question").fill("Quels projets ?")
        page.locator("#poll-budget").fill("1000")
        page.locator("#poll-projects").fill("Des bancs")
        page.get_by_role("button", name={"fr": "Créer le vote",
                                         "en": "Create the poll"}[language]).click()
        expect(page.get_by_role("alert")).to_contain_text("Des bancs")
        expect(page.locator("#poll-projects")).to_have_value("Des bancs")
        violations = axe_violations(page)
        assert violations == [], f"the poll form sent back: {describe(violations)}"
        assert len(checked) == 3


def test_the_organiser_pages_fit_a_phone(chromium: Browser, system: Embedded,
                                         organised: Organised, tmp_path: Path) -> None:
    """Nothing wider than a 360 px screen; the screenshots are for a person to look at."""
    with new_page(chromium, viewport={"width": 360, "height": 740}) as page:
        signed_in_as_organiser(page, system, organised)
        for name, path in (("index", "/organiser"),
                           ("consultation",
                            f"/organiser/consultations/{organised.consultation_id}"),
                           ("poll", f"/organiser/polls/{organised.poll_id}")):
            page.goto(system.base + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
            page.screenshot(path=str(tmp_path / f"organiser-{name}-phone.png"),
                            full_page=True)
