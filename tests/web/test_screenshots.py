"""Each main page (a participant's, an organiser's, an agent's) at a phone's width and a
desktop's, in Chromium, on a urne filled by
``urne demo``: nothing wider than the screen (no sideways scrolling), and a screenshot
of each, written to a temporary folder, or to URNE_SCREENSHOTS_DIR: ``make
screenshots`` refreshes the copies in docs/screenshots/ that the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.scenario import ADMIN, ORGANISER, login, open_poll
from tests.support.embedded import Embedded
from tests.web.browser import new_page

pytestmark = pytest.mark.e2e

WIDTHS = {"phone": (360, 740), "desktop": (1280, 800)}
BUDGET = {"method": "budget", "question": "Quels projets pour le quartier ?",
          "budget": 100_000,
          "projects": [{"id": "bancs", "title": "Des bancs au parc", "cost": 20_000},
                       {"id": "arbres", "title": "200 arbres le long de l'allée",
                        "cost": 60_000},
                       {"id": "piste", "title": "Une piste cyclable", "cost": 70_000}]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    running = Embedded(tmp_path_factory.mktemp("shots") / "data")
    running.start()
    yield running
    running.stop()


def test_the_main_pages_at_phone_and_desktop_widths(chromium: Browser, system: Embedded,
                                                    tmp_path: Path) -> None:
    # A process of its own: the demo runs an event loop, which Playwright's sync API in
    # this thread would not let it start.
    done = subprocess.run([sys.executable, "-m", "urne", "demo", "--url", system.base,
                           "--participants", "8", "--outbox", str(system.outbox),
                           "--organiser-email", ORGANISER, "--seed", "7"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    polls = {p["method"]: p["poll_id"] for p in json.loads(done.stdout)["polls"]}
    with httpx.Client(base_url=system.base, timeout=30) as http:
        budget = open_poll(http, system.outbox, rules=BUDGET).poll_id
        consultation = http.get(f"/v1/polls/{budget}").json()["consultation_id"]
        admin = login(http, system.outbox, ADMIN)["Authorization"].removeprefix("Bearer ")
    pages = {"home": "/", "consultation": f"/consultations/{consultation}",
             "sign-in": "/sign-in", "ballot": f"/polls/{budget}",
             "result": f"/polls/{polls['budget']}/results",
             "result-ranking": f"/polls/{polls['ranking']}/results"}
    # The organiser's and the agent's, signed in as an admin (both roles' pages).
    staff = {"organiser": "/organiser",
             "organiser-consultation": f"/organiser/consultations/{consultation}",
             "organiser-poll": f"/organiser/polls/{budget}",
             "desk": "/desk", "desk-poll": f"/desk/polls/{budget}"}
    out = Path(os.environ.get("URNE_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for device, (width, height) in WIDTHS.items():
        with new_page(chromium, viewport={"width": width, "height": height}) as page:
            for name, path in pages.items():
                shoot(page, system.base + path, out / f"{name}-{device}.png", width)
            page.context.add_cookies([
                {"name": name, "value": value, "url": system.base, "httpOnly": True,
                 "sameSite": "Lax"} for name, value in (("urne_session", admin),
                                                        ("urne_role", "admin"))])
            for name, path in staff.items():
                shoot(page, system.base + path, out / f"{name}-{device}.png", width)


def shoot(page: Page, url: str, shot: Path, width: int) -> None:
    """The page at ``url``, no wider than the screen, saved whole to ``shot``."""
    response = page.goto(url)
    assert response is not None and response.ok, (url, response)
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= width, f"{url} is {wide} px wide on a {width} px screen"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000
