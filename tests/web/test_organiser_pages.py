"""The organiser's pages over the embedded profile, without a browser (TestClient over
HTTPS, so the Secure cookies travel): a consultation created, published, given a
proposal and polls of four methods through the pages; a poll opened, voted in (through
the API), its turnout seen, closed and its result published. A participant is refused
by the API and the page says so; a poll form that makes no rules, or rules the API
refuses, comes back with what was typed; a form without its CSRF token changes nothing.
The same flow in Chromium: test_organiser_browser.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.scenario import (
    ADMIN,
    ORGANISER,
    OpenPoll,
    login,
    vote,
    wait_for,
    wait_until,
)
from tests.web.pages import field, sign_in
from urne.gateway.web.organiser import PollFormError, poll_rules, slugs

pytestmark = pytest.mark.integration

PARTICIPANT = "lea@example.org"


def alert(html: str) -> str:
    found = re.search(r'role="alert">([^<]*)<', html)
    assert found, "no alert"
    return found.group(1)


def created(web: TestClient, csrf: str, title: str = "Parc des Gayeulles",
            **fields: str) -> str:
    """A consultation made through the form; its id."""
    r = web.post("/organiser/consultations", data={
        "csrf": csrf, "title": title, "description": "Que planter ?\nEt où ?", **fields},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    found = re.fullmatch(r"/organiser/consultations/([0-9a-f]+)\?done=created",
                         r.headers["location"])
    assert found, r.headers["location"]
    return found.group(1)


def poll_form(csrf: str, **values: str) -> dict[str, str]:
    return {"csrf": csrf, "method": "yes_no_abstain", "question": "", "options": "",
            "grades": "", "max_choices": "", "budget": "", "projects": "",
            "results_visibility": "after_close", "proposal_id": "", **values}


def new_poll(web: TestClient, cid: str, form: dict[str, str]) -> str:
    r = web.post(f"/organiser/consultations/{cid}/polls", data=form, follow_redirects=False)
    assert r.status_code == 303, alert(r.text) if "alert" in r.text else r.text
    found = re.fullmatch(r"/organiser/polls/([0-9a-f]+)\?done=poll", r.headers["location"])
    assert found, r.headers["location"]
    return found.group(1)


def visible_to_admin(web: TestClient, outbox: Path) -> list[dict[str, Any]]:
    """Every consultation, drafts included: an admin sees them all."""
    items: list[dict[str, Any]] = web.get("/v1/consultations", headers=login(
        web, outbox, ADMIN)).json()["items"]
    return items


def test_an_organiser_runs_a_consultation_through_the_pages(web: TestClient,
                                                            outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    home = web.get("/organiser")
    assert home.status_code == 200 and '<html lang="fr">' in home.text
    assert "Vous n'organisez encore aucune consultation." in home.text
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]

    cid = created(web, csrf)
    page = web.get(f"/organiser/consultations/{cid}?done=created")
    assert page.status_code == 200
    assert "La consultation est créée, en brouillon" in page.text
    assert "Brouillon" in page.text and "Publier la consultation" in page.text
    assert web.get(f"/v1/consultations/{cid}").status_code == 404  # a draft: not public
    assert f'href="/organiser/consultations/{cid}"' in web.get("/organiser").text

    r = web.post(f"/organiser/consultations/{cid}/publish", data={"csrf": csrf},
                 follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/organiser/consultations/{cid}?done=published"
    assert web.get(f"/v1/consultations/{cid}").json()["status"] == "published"

    r = web.post(f"/organiser/consultations/{cid}/proposals", data={
        "csrf": csrf, "title": "Planter 200 arbres", "body": "Le long de l'allée *nord*."},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    proposals = web.get(f"/v1/consultations/{cid}").json()["proposals"]
    assert [(p["title"], p["status"]) for p in proposals] == [("Planter 200 arbres",
                                                               "published")]
    page = web.get(f"/organiser/consultations/{cid}")
    assert "Proposition publiée" in page.text
    # The default grades are the page's language's.
    assert "Très bien\nBien\nAssez bien" in page.text

    yes_no = new_poll(web, cid, poll_form(csrf, question="Faut-il planter 200 arbres ?",
                                          proposal_id=proposals[0]["id"]))
    approval = new_poll(web, cid, poll_form(
        csrf, method="approval", question="Quels arbres ?", max_choices="2",
        options="Chênes\nÉrables\n\n  Tilleuls  \n", results_visibility="embargoed"))
    budget = new_poll(web, cid, poll_form(
        csrf, method="budget", question="Quels projets ?", budget="100 000",
        projects="Des bancs au parc; 20 000\n200 arbres; 60000\nUne piste cyclable ; 70000"))
    judgment = new_poll(web, cid, poll_form(
        csrf, method="majority_judgment", question="Que pensez-vous de chaque projet ?",
        options="Bancs\nArbres", grades=field_text(page.text, "grades"),
        results_visibility="live"))

    org = login(web, outbox, ORGANISER)
    polls = {p["id"]: p for p in web.get(f"/v1/consultations/{cid}", headers=org
                                         ).json()["polls"]}
    assert set(polls) == {yes_no, approval, budget, judgment}
    assert polls[yes_no]["proposal_id"] == proposals[0]["id"]
    assert polls[yes_no]["rules"] == {"method": "yes_no_abstain",
                                      "question": "Faut-il planter 200 arbres ?"}
    assert polls[approval]["results_visibility"] == "embargoed"
    assert polls[approval]["rules"]["options"] == [
        {"id": "chenes", "title": "Chênes"}, {"id": "erables", "title": "Érables"},
        {"id": "tilleuls", "title": "Tilleuls"}]
    assert polls[approval]["rules"]["max_choices"] == 2
    assert polls[budget]["rules"]["budget"] == 100_000
    assert [(p["id"], p["title"], p["cost"]) for p in polls[budget]["rules"]["projects"]] == [
        ("des-bancs-au-parc", "Des bancs au parc", 20_000),
        ("200-arbres", "200 arbres", 60_000),
        ("une-piste-cyclable", "Une piste cyclable", 70_000)]
    assert polls[judgment]["rules"]["grades"] == [
        "Excellent", "Très bien", "Bien", "Assez bien", "Passable", "Insuffisant",
        "À rejeter"]
    assert polls[judgment]["results_visibility"] == "live"
    assert all(p["status"] == "draft" for p in polls.values())

    page = web.get(f"/organiser/consultations/{cid}")
    assert page.text.count("Ouvrir le vote") == 4
    opened = web.post(f"/organiser/polls/{yes_no}/open", data={
        "csrf": csrf, "next": f"/organiser/consultations/{cid}#polls"},
        follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/organiser/consultations/{cid}?done=open#polls"
    assert web.get(f"/v1/polls/{yes_no}").json()["status"] == "open"

    poll_page = web.get(f"/organiser/polls/{yes_no}")
    assert poll_page.status_code == 200 and "Clore le vote" in poll_page.text
    assert 'id="turnout-voters">0<' in poll_page.text
    vote(web, outbox, OpenPoll(yes_no, org), PARTICIPANT, "yes")
    assert wait_until(lambda: 'id="turnout-voters">1<' in web.get(
        f"/organiser/polls/{yes_no}").text, timeout=30), "the turnout never showed the vote"
    poll_page = web.get(f"/organiser/polls/{yes_no}")
    assert '<th scope="col">En ligne</th>' in poll_page.text
    assert '<th scope="row">Sans quartier</th>' in poll_page.text

    closed = web.post(f"/organiser/polls/{yes_no}/close", data={
        "csrf": csrf, "next": f"/organiser/polls/{yes_no}"}, follow_redirects=False)
    assert closed.status_code == 303
    assert closed.headers["location"] == f"/organiser/polls/{yes_no}?done=close"
    result = wait_for(lambda: web.get(f"/v1/polls/{yes_no}/results"), 200)
    assert result.status_code == 200, result.text
    assert result.json()["tally"]["counts"] == {"yes": 1, "no": 0, "abstain": 0}
    assert wait_until(lambda: 'id="poll-status">Résultat publié<' in web.get(
        f"/organiser/polls/{yes_no}").text, timeout=30)
    done = web.get(f"/organiser/polls/{yes_no}")
    assert f'href="/polls/{yes_no}/results"' in done.text
    assert "Clore le vote" not in done.text and "Ouvrir le vote" not in done.text


def field_text(html: str, name: str) -> str:
    """What a <textarea> holds."""
    found = re.search(rf'name="{name}"[^>]*>([^<]*)</textarea>', html)
    assert found, f"no {name} textarea"
    return found.group(1)


def test_an_embargoed_result_is_released_by_the_organiser(web: TestClient,
                                                         outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    cid = created(web, csrf)
    web.post(f"/organiser/consultations/{cid}/publish", data={"csrf": csrf})
    poll = new_poll(web, cid, poll_form(csrf, question="Faut-il un marché ?",
                                        results_visibility="embargoed"))
    for action in ("open", "close"):
        r = web.post(f"/organiser/polls/{poll}/{action}", data={"csrf": csrf},
                     follow_redirects=False)
        assert r.status_code == 303, r.text
    page = web.get(f"/organiser/polls/{poll}")
    assert "Publier le résultat" in page.text
    assert web.get(f"/v1/polls/{poll}/results").status_code == 409
    r = web.post(f"/organiser/polls/{poll}/publish", data={"csrf": csrf},
                 follow_redirects=False)
    assert r.headers["location"] == f"/organiser/polls/{poll}?done=publish"
    assert wait_for(lambda: web.get(f"/v1/polls/{poll}/results"), 200).status_code == 200
    # Releasing what is released changes nothing; an action that is none is a 404.
    again = web.post(f"/organiser/polls/{poll}/publish", data={"csrf": csrf},
                     follow_redirects=False)
    assert again.status_code == 303
    assert web.post(f"/organiser/polls/{poll}/delete", data={"csrf": csrf}
                    ).status_code == 404


def test_opening_a_poll_of_a_draft_consultation_says_why_not(web: TestClient,
                                                            outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    cid = created(web, csrf)
    poll = new_poll(web, cid, poll_form(csrf, question="Faut-il un marché ?"))
    refused = web.post(f"/organiser/polls/{poll}/open", data={"csrf": csrf},
                       headers={"Accept-Language": "en"})
    assert refused.status_code == 409
    assert alert(refused.text) == "Publish the consultation before opening its polls."
    assert web.get(f"/v1/polls/{poll}", headers=login(web, outbox, ORGANISER)
                   ).json()["status"] == "draft"


def test_a_participant_is_refused_and_nothing_is_created(web: TestClient,
                                                        outbox: Path) -> None:
    # An organiser's published consultation, with a poll in draft, made through the API.
    org = login(web, outbox, ORGANISER)
    cid = web.post("/v1/consultations", headers=org, json={"title": "Parc"}).json()["id"]
    web.post(f"/v1/consultations/{cid}/publish", headers=org)
    poll = web.post(f"/v1/consultations/{cid}/polls", headers=org, json={
        "rules": {"method": "yes_no_abstain", "question": "Un marché ?"}}).json()["id"]

    csrf = sign_in(web, outbox, PARTICIPANT, "/organiser")
    home = web.get("/organiser")
    assert home.status_code == 403 and 'name="title"' not in home.text
    assert alert(home.text) == "Seuls les organisateurs et les administrateurs peuvent " \
                               "faire cela."
    made = web.post("/organiser/consultations", data={"csrf": csrf, "title": "Intrus"})
    assert made.status_code == 403  # the API's refusal, said on the page
    assert alert(made.text) == "Seuls les organisateurs et les administrateurs peuvent " \
                               "faire cela."
    assert web.get(f"/organiser/consultations/{cid}").status_code == 403
    assert web.get(f"/organiser/polls/{poll}").status_code == 404  # a draft: unseen
    for path, data in ((f"/organiser/consultations/{cid}/polls",
                        poll_form(csrf, question="Intrus ?")),
                       (f"/organiser/consultations/{cid}/proposals",
                        {"csrf": csrf, "title": "Intrus"}),
                       (f"/organiser/polls/{poll}/open", {"csrf": csrf})):
        r = web.post(path, data=data)
        # Refused by the API: not an organiser; a proposal from anyone else only during
        # the consultation's proposals step (it has none).
        assert r.status_code == (409 if path.endswith("/proposals") else 403), path
        assert alert(r.text), path
    assert [c["title"] for c in visible_to_admin(web, outbox)] == ["Parc"]
    found = web.get(f"/v1/consultations/{cid}", headers=org).json()
    assert found["proposals"] == [] and [p["id"] for p in found["polls"]] == [poll]
    assert found["polls"][0]["status"] == "draft"


def test_a_creation_form_sent_twice_creates_once(web: TestClient, outbox: Path) -> None:
    """A double click, or a form sent again after a lost answer: the page's idempotency
    key makes the consultation, the poll and the proposal once each; the page shown next
    has a new key, for the next one."""
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    home = web.get("/organiser").text
    form = {"description": "", "idempotency_key": field(home, "idempotency_key")}
    made = {created(web, csrf, "Bancs", **form) for _ in range(2)}
    assert len(made) == 1
    [cid] = made
    assert field(web.get("/organiser").text, "idempotency_key") != form["idempotency_key"]
    page = web.get(f"/organiser/consultations/{cid}").text
    key = field(page, "idempotency_key")
    polls = {new_poll(web, cid, poll_form(csrf, question="Des bancs ?", idempotency_key=key))
             for _ in range(2)}
    proposal = {"csrf": csrf, "title": "Un banc", "body": "", "idempotency_key": key}
    for _ in range(2):
        r = web.post(f"/organiser/consultations/{cid}/proposals", data=proposal,
                     follow_redirects=False)
        assert r.status_code == 303, r.text
    found = web.get(f"/v1/consultations/{cid}", headers=login(web, outbox, ORGANISER)).json()
    assert [p["id"] for p in found["polls"]] == list(polls) and len(polls) == 1
    assert [p["title"] for p in found["proposals"]] == ["Un banc"]
    assert [c["title"] for c in visible_to_admin(web, outbox)].count("Bancs") == 1


def test_signed_out_the_pages_ask_to_sign_in(web: TestClient, outbox: Path) -> None:
    for path in ("/organiser", "/organiser/consultations/abc", "/organiser/polls/abc"):
        r = web.get(path)
        assert r.status_code == 401 and 'name="email"' in r.text, path
        assert f'name="next" value="{path}"' in r.text
    # A form sent signed out: the API asks who it is; back here once signed in.
    csrf = field(web.get("/organiser").text, "csrf")
    r = web.post("/organiser/consultations", data={"csrf": csrf, "title": "Anonyme"})
    assert r.status_code == 401 and 'name="next" value="/organiser"' in r.text
    assert visible_to_admin(web, outbox) == []


def test_a_poll_form_that_makes_no_rules_comes_back_with_its_values(
        web: TestClient, outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    cid = created(web, csrf)
    projects = "Des bancs; 20000\nDes arbres"  # the second line has no cost
    r = web.post(f"/organiser/consultations/{cid}/polls", data=poll_form(
        csrf, method="budget", question="Quels projets ?", budget="100000",
        projects=projects))
    assert r.status_code == 422
    assert alert(r.text) == "Écrivez chaque projet sous la forme : titre; coût (un nombre " \
                            "entier). Cette ligne ne l&#39;est pas : Des arbres"
    assert field_text(r.text, "projects") == projects
    assert field_text(r.text, "question") == "Quels projets ?"
    assert re.search(r'value="budget" required checked', r.text)
    assert field(r.text, "budget") == "100000"

    none = web.post(f"/organiser/consultations/{cid}/polls", data=poll_form(
        csrf, method="ranking", question="Quel parc d'abord ?"),
        headers={"Accept-Language": "en"})
    assert none.status_code == 422 and alert(none.text) == "List the options, one per line."
    assert field_text(none.text, "question") == "Quel parc d&#39;abord ?"

    # Rules the page makes but the API refuses: more choices than options.
    too_many = web.post(f"/organiser/consultations/{cid}/polls", data=poll_form(
        csrf, method="approval", question="Quels arbres ?", options="Chênes\nÉrables",
        max_choices="5", results_visibility="embargoed"))
    assert too_many.status_code == 422
    assert "L&#39;API a refusé ces valeurs" in alert(too_many.text)
    assert field_text(too_many.text, "options") == "Chênes\nÉrables"
    assert field(too_many.text, "max_choices") == "5"
    assert re.search(r'value="embargoed" checked', too_many.text)
    # A results visibility the API does not know.
    odd = web.post(f"/organiser/consultations/{cid}/polls", data=poll_form(
        csrf, question="Un marché ?", results_visibility="never"))
    assert odd.status_code == 422

    # And a consultation without a title.
    untitled = web.post("/organiser/consultations", data={
        "csrf": csrf, "title": " ", "description": "Gardée"})
    assert untitled.status_code == 422 and "Gardée</textarea>" in untitled.text
    org = login(web, outbox, ORGANISER)
    assert web.get(f"/v1/consultations/{cid}", headers=org).json()["polls"] == []
    assert len(visible_to_admin(web, outbox)) == 1


def test_a_form_without_its_csrf_token_changes_nothing(web: TestClient,
                                                      outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    cid = created(web, csrf)
    poll = new_poll(web, cid, poll_form(csrf, question="Un marché ?"))
    for path, data in (("/organiser/consultations", {"title": "Sans jeton"}),
                       (f"/organiser/consultations/{cid}/publish", {}),
                       (f"/organiser/consultations/{cid}/proposals", {"title": "Sans"}),
                       (f"/organiser/consultations/{cid}/polls",
                        {k: v for k, v in poll_form("x", question="Sans ?").items()
                         if k != "csrf"}),
                       (f"/organiser/polls/{poll}/open", {"csrf": "not-the-cookie"})):
        r = web.post(path, data=data)
        assert r.status_code == 403, path
    org = login(web, outbox, ORGANISER)
    found = web.get(f"/v1/consultations/{cid}", headers=org).json()
    assert found["status"] == "draft" and found["proposals"] == []
    assert [(p["id"], p["status"]) for p in found["polls"]] == [(poll, "draft")]
    assert [c["title"] for c in visible_to_admin(web, outbox)] == ["Parc des Gayeulles"]


def test_the_pages_in_english(web: TestClient, outbox: Path) -> None:
    csrf = sign_in(web, outbox, ORGANISER, "/organiser")
    web.get("/language/en")
    cid = created(web, csrf)
    page = web.get(f"/organiser/consultations/{cid}")
    assert '<html lang="en">' in page.text and "Publish the consultation" in page.text
    assert "Very good\nGood\nFairly good" in page.text
    assert "Participatory budget" in page.text


@pytest.mark.parametrize(("titles", "ids"), [
    (["Chênes", "Érables"], ["chenes", "erables"]),
    (["Parc", "parc", "PARC !"], ["parc", "parc-2", "parc-3"]),
    (["!!!", "中文"], ["o1", "o2"]),
    (["x" * 100], ["x" * 40]),
])
def test_option_ids_are_made_from_the_lines(titles: list[str], ids: list[str]) -> None:
    assert slugs(titles) == ids
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]*", i) for i in ids)


def test_the_poll_form_as_rules() -> None:
    blank = {k: "" for k in ("method", "question", "options", "grades", "max_choices",
                             "budget", "projects")}
    assert poll_rules({**blank, "method": "ranking", "question": " Q ",
                       "options": "A\nB\nC"}) == {
        "method": "ranking", "question": "Q", "max_ranks": 3,
        "options": [{"id": "a", "title": "A"}, {"id": "b", "title": "B"},
                    {"id": "c", "title": "C"}]}
    assert poll_rules({**blank, "method": "budget", "question": "Q", "budget": "1\u202f000",
                       "projects": "Bancs; un; 200"})["projects"] == [
        {"id": "bancs-un", "title": "Bancs; un", "cost": 200}]
    with pytest.raises(PollFormError):  # digits, but not a number Python would write
        poll_rules({**blank, "method": "budget", "question": "Q", "budget": "1²"})
