"""A participant's whole budget vote in Chromium, against ``urne up``: from the list of
consultations to the poll, signed in by code, the remaining budget counted as projects
are ticked, the ballot cast, changed, and the tracker found in the published record; and
axe-core finds nothing serious or critical on the pages, in French and in English.

Here the organiser's side goes through the API; its pages have their own browser test
(``test_organiser_browser.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.scenario import OpenPoll, open_poll, read_code, wait_for
from tests.support.embedded import Embedded
from tests.web.browser import axe_violations, describe, new_page

pytestmark = pytest.mark.e2e

BUDGET = {"method": "budget", "question": "Quels projets pour le quartier ?",
          "budget": 100_000,
          "projects": [{"id": "bancs", "title": "Des bancs au parc", "cost": 20_000},
                       {"id": "arbres", "title": "200 arbres", "cost": 60_000},
                       {"id": "piste", "title": "Une piste cyclable", "cost": 70_000}]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    # On 127.0.0.1 as `make up` serves it: browsers treat loopback as a secure origin
    # and keep the Secure session cookie over plain HTTP there.
    running = Embedded(tmp_path_factory.mktemp("web") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def budget_poll(system: Embedded) -> OpenPoll:
    with httpx.Client(base_url=system.base, timeout=30) as http:
        return open_poll(http, system.outbox, rules=BUDGET)


def sign_in_from(page: Page, system: Embedded, email: str) -> None:
    """From a page with a sign-in link: the code asked for, read, typed."""
    page.get_by_role("link", name="Connectez-vous pour voter.").click()
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_role("button", name="M'envoyer un code").click()
    page.get_by_label("Code").fill(read_code(system.outbox, email))
    page.get_by_role("button", name="Se connecter").click()


def test_a_budget_vote_a_revote_and_the_tracker_in_the_record(
        page: Page, system: Embedded, budget_poll: OpenPoll) -> None:
    with httpx.Client(base_url=system.base, timeout=30) as http:
        consultation = http.get(f"/v1/polls/{budget_poll.poll_id}").json()["consultation_id"]
    page.goto(system.base + "/")
    page.locator(f'a[href="/consultations/{consultation}"]').click()
    page.get_by_role("link", name=BUDGET["question"]).click()
    sign_in_from(page, system, "ines@example.org")
    expect(page.get_by_role("heading", name=BUDGET["question"])).to_be_visible()

    remaining = page.locator(".remaining")
    expect(remaining).to_have_text(re.compile(r"100\s000"))
    page.get_by_label(re.compile("200 arbres")).check()
    expect(remaining).to_have_text(re.compile(r"40\s000"))
    page.get_by_label(re.compile("Une piste cyclable")).check()  # over the budget
    expect(remaining).to_have_text(re.compile(r"-30\s000"))
    expect(remaining).to_have_class(re.compile("over"))
    page.get_by_role("button", name="Déposer mon bulletin").click()
    # The API refuses what the counter showed: the form comes back, with why.
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label(re.compile("Une piste cyclable")).uncheck()
    page.get_by_label(re.compile("Des bancs au parc")).check()
    expect(remaining).to_have_text(re.compile(r"20\s000"))
    page.get_by_role("button", name="Déposer mon bulletin").click()
    expect(page.get_by_role("heading", name="Votre bulletin est enregistré")).to_be_visible()
    first = page.locator("#tracker").inner_text()

    page.get_by_role("link", name="Changer mon vote (jusqu'à la clôture)").click()
    page.get_by_label(re.compile("Une piste cyclable")).check()
    page.get_by_role("button", name="Déposer mon bulletin").click()
    expect(page.get_by_text("seul celui-ci compte")).to_be_visible()
    last = page.locator("#tracker").inner_text()
    assert last != first

    with httpx.Client(base_url=system.base, timeout=30) as http:
        closed = http.post(f"/v1/polls/{budget_poll.poll_id}/close",
                           headers=budget_poll.organiser)
        assert closed.status_code == 200, closed.text
        result = wait_for(lambda: http.get(f"/v1/polls/{budget_poll.poll_id}/results"), 200)
    assert result.status_code == 200, result.text
    assert result.json()["tally"]["ballots"] == 1  # the revote replaced the first

    page.get_by_role("link", name="Vérifier mon traceur dans le registre public").click()
    expect(page.locator("#tracker-found")).to_be_visible()
    expect(page.locator("#tracker-input")).to_have_value(last)

    page.get_by_role("link", name="Retour au vote").click()
    page.get_by_role("link", name="Voir le résultat").click()
    expect(page.get_by_role("img", name=BUDGET["question"])).to_be_visible()
    expect(page.get_by_text("Bulletins comptés : 1.")).to_be_visible()
    violations = axe_violations(page)
    assert violations == [], describe(violations)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_main_pages_have_no_serious_accessibility_fault(
        chromium: Browser, system: Embedded, budget_poll: OpenPoll, language: str) -> None:
    with new_page(chromium, "fr-FR" if language == "fr" else "en-GB") as page:
        checked = []
        for path in ("/", "/sign-in", f"/polls/{budget_poll.poll_id}",
                     f"/polls/{budget_poll.poll_id}/tracker?tracker=0000"):
            page.goto(system.base + path)
            assert page.locator("html").get_attribute("lang") == language
            violations = axe_violations(page)
            assert violations == [], f"{path}: {describe(violations)}"
            checked.append(path)
        assert len(checked) == 4
