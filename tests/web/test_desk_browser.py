"""The agent desk in Chromium, against ``urne up``: an agent (the role given by an admin
through the API) signs in through the pages, registers someone and sees their card (the
code, its QR code; printing shows the card alone), helps them vote and sees that they
have voted, and enters a batch of paper ballots, one refused on its line; axe-core finds
nothing serious or critical on the desk's pages, in French and in English, and none is
wider than a 360 px screen. Without a browser: test_desk_pages.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, StorageState, expect

from tests.e2e.scenario import ADMIN, OpenPoll, login, open_poll, read_code
from tests.support.embedded import Embedded
from tests.web.browser import axe_violations, describe, new_page

pytestmark = pytest.mark.e2e

AGENT = "agent-navigateur@example.org"
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    running = Embedded(tmp_path_factory.mktemp("desk") / "data")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def poll(system: Embedded) -> OpenPoll:
    with httpx.Client(base_url=system.base, timeout=30) as http:
        return open_poll(http, system.outbox)


@pytest.fixture(scope="module")
def agent(chromium: Browser, system: Embedded) -> StorageState:
    """The agent's browser session (its cookies), signed in once through the pages: each
    test's own context starts from it (codes to one address are limited per hour)."""
    with httpx.Client(base_url=system.base, timeout=30) as http:
        r = http.put("/v1/admin/roles", headers=login(http, system.outbox, ADMIN),
                     json={"email": AGENT, "role": "agent"})
        assert r.status_code == 200, r.text
    with new_page(chromium) as page:
        page.goto(system.base + "/desk")  # signed out: the sign-in form, back here after
        page.get_by_label("Adresse e-mail").fill(AGENT)
        page.get_by_role("button", name="M'envoyer un code").click()
        page.get_by_label("Code").fill(read_code(system.outbox, AGENT))
        page.get_by_role("button", name="Se connecter").click()
        expect(page.get_by_role("heading", name="Accueil des agents", level=1)).to_be_visible()
        return page.context.storage_state()


def no_fault(page: Page, where: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{where}: {describe(violations)}"


def fits(page: Page, width: int, where: str) -> None:
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= width, f"{where} is {wide} px wide on a {width} px screen"


def look_until_voted(page: Page) -> str:
    """The sign-in list is seconds behind the ballots: look again until it shows one."""
    deadline = time.monotonic() + 30
    while True:
        standing = page.locator("#standing").inner_text()
        if standing.startswith("A voté") or time.monotonic() > deadline:
            return standing
        time.sleep(0.3)
        page.reload()


def test_an_agent_registers_a_person_prints_the_card_and_helps_them_vote(
        chromium: Browser, system: Embedded, poll: OpenPoll, agent: StorageState) -> None:
    with new_page(chromium, storage_state=agent) as page:
        page.goto(system.base + "/desk")
        page.get_by_role("button", name="Inscrire et imprimer la carte").click()
        expect(page.get_by_role("heading", name="Carte de connexion", level=1)).to_be_visible()
        code = page.locator("#desk-code")
        expect(code).to_have_text(re.compile(r"^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$"))
        qr = page.get_by_role("img", name="QR code du code de connexion")
        expect(qr).to_be_visible()
        assert qr.bounding_box()["width"] >= 100  # type: ignore[index]
        person = page.locator("#person-id").inner_text()
        # Printed, the card is all there is.
        page.emulate_media(media="print")
        expect(page.locator(".desk-card")).to_be_visible()
        expect(page.get_by_role("banner")).to_be_hidden()
        expect(page.get_by_role("button", name="Accompagner cette personne au guichet de "
                                               "ce vote")).to_be_hidden()
        page.emulate_media(media="screen")

        page.get_by_label("Vote", exact=True).select_option(poll.poll_id)
        page.get_by_role("button", name="Accompagner cette personne au guichet de ce vote"
                         ).click()
        expect(page.locator("#person")).to_have_value(person)
        expect(page.locator("#standing")).to_have_text("N'a pas encore voté.")
        page.get_by_label("Non", exact=True).check()
        page.locator("#vote-checked").check()
        page.get_by_role("button", name="Déposer son bulletin").click()
        expect(page.get_by_role("heading", name="Son bulletin est enregistré")).to_be_visible()
        expect(page.locator("#tracker")).to_have_text(re.compile(r"^[0-9A-Z-]{9,}$"))

        page.get_by_role("link", name="Retour au guichet de ce vote").click()
        assert look_until_voted(page) == "A voté. Par : à un guichet (vote assisté)."


def test_an_agent_enters_a_batch_of_paper_ballots(
        chromium: Browser, system: Embedded, poll: OpenPoll, agent: StorageState) -> None:
    with new_page(chromium, storage_state=agent) as page:
        page.goto(system.base + "/desk")
        page.locator(f'a[href="/desk/polls/{poll.poll_id}"]').first.click()
        expect(page.get_by_role("heading", name="Bulletins papier")).to_be_visible()
        for n, (serial, answer) in enumerate((("N-1", "Oui"), ("N-2", "Non"),
                                              ("N-3", "Abstention")), start=1):
            page.get_by_label(f"Numéro du bulletin {n}", exact=True).fill(serial)
            page.get_by_label(f"Réponse du bulletin {n}", exact=True).select_option(
                label=answer)
        page.get_by_role("button", name="Saisir ces bulletins").click()
        expect(page.locator("#batch-summary")).to_have_text("Bulletins acceptés : 3 sur 3.")
        results = page.locator("#batch-results")
        for serial in ("N-1", "N-2", "N-3"):
            expect(results.get_by_role("row", name=_row(serial))).to_contain_text("Accepté.")

        # N-2 again with another answer: refused on its line; N-4 taken.
        page.get_by_label("Numéro du bulletin 1", exact=True).fill("N-2")
        page.get_by_label("Réponse du bulletin 1", exact=True).select_option(label="Oui")
        page.get_by_label("Numéro du bulletin 2", exact=True).fill("N-4")
        page.get_by_label("Réponse du bulletin 2", exact=True).select_option(label="Oui")
        page.get_by_role("button", name="Saisir ces bulletins").click()
        expect(page.locator("#batch-summary")).to_have_text("Bulletins acceptés : 1 sur 2.")
        expect(results.get_by_role("row", name=_row("N-2"))).to_contain_text(
            "Refusé : Ce bulletin a déjà été saisi avec un autre choix")
        expect(results.get_by_role("row", name=_row("N-4"))).to_contain_text("Accepté.")


def _row(serial: str) -> re.Pattern[str]:
    """A result row by its serial: anchored, since a row's random tracker (``ETZN-3…``) can
    contain another serial."""
    return re.compile(rf"^{re.escape(serial)} ")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_desk_pages_have_no_serious_accessibility_fault_and_fit_a_phone(
        chromium: Browser, system: Embedded, poll: OpenPoll, agent: StorageState,
        language: str) -> None:
    with new_page(chromium, "fr-FR" if language == "fr" else "en-GB", storage_state=agent,
                  viewport=PHONE) as page:
        checked = []

        def check(where: str) -> None:
            assert page.locator("html").get_attribute("lang") == language
            no_fault(page, where)
            fits(page, PHONE["width"], where)
            checked.append(where)

        page.goto(system.base + "/desk")
        check("home")
        page.locator("form[action='/desk/people'] button").click()
        expect(page.locator("#desk-code")).to_be_visible()
        check("card")
        person = page.locator("#person-id").inner_text()
        page.goto(f"{system.base}/desk/polls/{poll.poll_id}?person={person}")
        expect(page.locator("#standing")).to_be_visible()
        check("poll desk, a person looked up")
        # A batch with a line in error: marked on its line, nothing entered.
        page.locator("#p0-serial").fill("X-1")
        page.locator("#p0-answer").select_option("yes")
        page.locator("#p1-answer").select_option("no")  # no serial
        page.locator("#p0-serial").press("Enter")
        expect(page.locator("#p1-error")).to_be_visible()
        expect(page.locator("#p1-serial")).to_have_attribute("aria-invalid", "true")
        check("poll desk, a line in error")
        page.locator("#p1-answer").select_option("")
        page.locator("#p0-serial").press("Enter")
        expect(page.locator("#batch-results")).to_be_visible()
        check("poll desk, a batch entered")
        page.locator("#vote-checked").check()
        page.locator("#answer-abstain").check()
        page.locator("form.ballot button[type=submit]").click()
        expect(page.locator("#tracker")).to_be_visible()
        check("assisted vote's receipt")
        assert len(checked) == 6
