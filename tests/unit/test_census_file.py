"""A census file as organisers' spreadsheets export it (gateway/census.py): read strictly,
every wrong line named, nothing taken from a file with one."""

from __future__ import annotations

from datetime import date

import pytest

from urne.gateway import census

pytestmark = pytest.mark.unit


def test_a_plain_file_is_read() -> None:
    rows = census.read(b"family_name,given_name,birth_date,district,email,resident\n"
                       b"Dupont,Eloise,1990-05-17,nord,eloise@example.org,yes\n"
                       b"Martin,Paul,01/02/2010,,,non\n")
    assert [(r.family_name, r.given_name, r.birth_date, r.district, r.email, r.resident)
            for r in rows] == [
        ("Dupont", "Eloise", date(1990, 5, 17), "nord", "eloise@example.org", True),
        ("Martin", "Paul", date(2010, 2, 1), None, None, False)]


def test_a_french_spreadsheet_with_its_own_headers_is_mapped() -> None:
    data = ("\ufeffNom;Prénom;Naissance;Quartier;Commentaire\r\n"
            "Dupont-Léger;Éloïse;17/05/1990;nord;rien\r\n\r\n").encode()
    [row] = census.read(data, "family_name=Nom,given_name=Prénom,birth_date=naissance,"
                              "district=QUARTIER")
    assert (row.family_name, row.given_name, row.district) == ("Dupont-Léger", "Éloïse", "nord")
    assert row.resident is True  # no column: resident


def test_every_wrong_line_is_named_and_nothing_is_taken() -> None:
    data = (b"family_name,given_name,birth_date,district,resident\n"
            b"Dupont,Eloise,1990-05-17,nord,yes\n"
            b"Martin,Paul,31/02/2010,sud,yes\n"
            b",Anh,1985-03-03,est,yes\n"
            b"Nguyen,Anh,1985-03-03,not a district!,yes\n"
            b"Lee,Kim,1985-03-03,,maybe\n")
    with pytest.raises(census.CensusFileError) as caught:
        census.read(data)
    lines = [e.split(":")[0] for e in caught.value.errors]
    assert lines == ["line 3", "line 4", "line 5", "line 6"]
    assert "birth_date '31/02/2010'" in caught.value.errors[0]
    assert "maybe" in caught.value.errors[3]


@pytest.mark.parametrize("data, columns, why", [
    (b"", None, "empty"),
    (b"family_name,given_name\nDupont,Eloise\n", None, "no column for birth_date"),
    (b"family_name,given_name,birth_date\n", None, "no rows"),
    (b"nom,prenom,naissance\nA,B,1990-01-01\n", "family_name=nom", "no column for given_name"),
    (b"family_name,given_name,birth_date\nA,B,1990-01-01\n", "surname=nom", "not field=header"),
    (b"family_name,given_name,birth_date\n\xff\xfe,B,1990-01-01\n", None, "not UTF-8"),
    # A header named in the mapping must be there: no column quietly left out.
    (b"nom,prenom,naissance\nA,B,1990-01-01\n",
     "family_name=nom,given_name=prenom,birth_date=naissance,resident=residant",
     "no column for resident"),
    (b"family_name,given_name,birth_date\n" + b"A" * 200_000 + b",B,1990-01-01\n", None,
     "line 2: field larger than field limit"),
    (b"family_name,given_name,birth_date\n---,B,1990-01-01\n", None, "line 2: family_name"),
])
def test_a_file_that_cannot_be_read_says_why(data: bytes, columns: str | None,
                                            why: str) -> None:
    with pytest.raises(census.CensusFileError, match=why):
        census.read(data, columns)


def test_names_in_any_script_are_taken() -> None:
    # Cyrillic on purpose (ruff would take it for look-alike Latin letters).
    rows = census.read("family_name,given_name,birth_date\nИванов,Иван,1980-01-01\n"  # noqa: RUF001
                       "李,小龙,1940-11-27\n".encode())
    assert [r.family_name for r in rows] == ["Иванов", "李"]


def test_errors_stop_at_a_readable_number() -> None:
    data = b"family_name,given_name,birth_date\n" + b"A,B,not-a-date\n" * 100
    with pytest.raises(census.CensusFileError) as caught:
        census.read(data)
    assert len(caught.value.errors) == census.MAX_ERRORS
