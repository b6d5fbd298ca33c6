"""The web pages' words and forms, without a server: every message the templates and
the code mark is in both catalogues (translated in French), none is left over; the
language chosen; a ballot form's fields as the API's choice."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from urne.gateway.web import forms
from urne.gateway.web.api import ApiProblem
from urne.gateway.web.i18n import LANGUAGES, LOCALES, negotiate, translations
from urne.gateway.web.page import Page

pytestmark = pytest.mark.unit

WEB = Path(forms.__file__).parent


def marked() -> set[str]:
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                     "lstrip_blocks": "true"}}
    return {str(message) for _, _, message, _, _ in extract_from_dir(
        str(WEB), method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
        options_map=options)}


def test_each_language_has_its_catalogue_and_its_name() -> None:
    assert sorted(LANGUAGES) == sorted(p.name for p in LOCALES.iterdir() if p.is_dir())
    assert all(name.strip() for name in LANGUAGES.values())  # the link's text


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_each_catalogue_holds_every_marked_message_and_no_other(lang: str) -> None:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    held = {str(m.id) for m in catalog if m.id}
    assert marked() - held == set(), "marked, not in the catalogue"
    assert held - marked() == set(), "in the catalogue, used nowhere"
    if lang == "fr":
        assert [m.id for m in catalog if m.id and not m.string] == []
        for m in catalog:  # a translation keeps the message's placeholders
            if m.id:
                assert sorted(re.findall(r"%\(\w+\)s", str(m.string))) == \
                    sorted(re.findall(r"%\(\w+\)s", str(m.id))), m.id


def test_french_is_french_and_english_falls_back_to_the_msgid() -> None:
    assert translations("fr").gettext("Sign in") == "Se connecter"
    assert translations("en").gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(("chosen", "header", "lang"), [
    (None, None, "fr"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "de-DE, en;q=0.4, fr;q=0.8", "fr"),
    (None, "de-DE", "fr"),
    ("en", "fr", "en"),
    ("xx", "en", "en"),
    (None, "en;q=bad, fr;q=0.1", "fr"),
])
def test_the_language_chosen_then_asked_then_french(chosen: str | None, header: str | None,
                                                    lang: str) -> None:
    assert negotiate(chosen, header) == lang


RANKING = {"method": "ranking", "options": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}
GRADES = {"method": "majority_judgment", "options": [{"id": "a"}, {"id": "b"}]}


def test_each_method_s_form_is_the_api_s_choice() -> None:
    assert forms.choice({"method": "yes_no_abstain"}, forms.parse(b"answer=no")) == \
        {"method": "yes_no_abstain", "answer": "no"}
    assert forms.choice({"method": "approval"}, forms.parse(b"approved=a&approved=c")) == \
        {"method": "approval", "approved": ["a", "c"]}
    assert forms.choice({"method": "budget"}, forms.parse(b"csrf=x")) == \
        {"method": "budget", "projects": []}
    assert forms.choice(RANKING, forms.parse(b"rank-a=2&rank-b=&rank-c=1")) == \
        {"method": "ranking", "ranking": ["c", "a"]}
    assert forms.choice(GRADES, forms.parse(b"grade-a=Bien&grade-b=Passable")) == \
        {"method": "majority_judgment", "grades": {"a": "Bien", "b": "Passable"}}


@pytest.mark.parametrize(("rules", "body"), [
    ({"method": "yes_no_abstain"}, b"answer=maybe"),
    ({"method": "yes_no_abstain"}, b""),
    (RANKING, b"rank-a=1&rank-b=1"),
    (RANKING, b"rank-a=first"),
    (GRADES, b"grade-a=Bien"),
    ({"method": "condorcet"}, b""),
])
def test_a_form_that_makes_no_choice_says_why(rules: dict, body: bytes) -> None:
    with pytest.raises(forms.FormError) as refused:
        forms.choice(rules, forms.parse(body))
    assert translations("fr").gettext(str(refused.value)) != str(refused.value)


def test_a_refusal_is_said_in_the_page_s_language_or_in_the_api_s_words() -> None:
    request = SimpleNamespace(cookies={"urne_lang": "fr"}, headers={}, client=None, app=None)
    page = Page(request)  # type: ignore[arg-type]
    assert page.say(ApiProblem(409, "poll_closed", "poll p is closed")) == \
        "Ce vote est clos : les bulletins ne sont plus acceptés."
    # An unknown code: the API's detail (never gettext(""), the catalogue's header).
    assert page.say(ApiProblem(409, "new_code", "something new")) == "something new"
