"""The census of a consultation: who may take part in its polls whose electorate is
``census`` (issue 9). No I/O here.

An organiser uploads the list (``POST /v1/consultations/{id}/census``, CSV). Of each
person identity keeps only:

- ``entry_key``: a keyed hash (HMAC-SHA-256, ``URNE_CODE_SECRET``) of the consultation
  and the person's normalised family name, given name and birth date;
- ``email_key``: the same of their normalised e-mail address, when the list has one;
- their district, in clear, and whether they are eligible (resident, and of the
  minimum age on the reference date), both computed at upload.

No name, birth date or address is stored. Keys include the consultation, so the same
person's entries in two consultations' censuses cannot be matched with each other.
A person *claims* their entry, by the e-mail of their account or by giving their names
and birth date; an entry is claimed by one account only, and an account claims one
entry per consultation. A voting token for a census poll carries the entry's district,
never the person.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import date, timedelta

from urne.services.identity.buckets import with_earlier
from urne.services.identity.keyed import keyed_hash
from urne.services.identity.limits import Limit

# Failed claims (no entry matches) per account: the names and birth date of someone
# else are guessable from a name alone (about 36,500 birth dates a century), so
# guessing is limited per account (and per client, with the wrong sign-in codes:
# ``limits.FAILURES_FROM_CLIENT``).
CLAIM_FAILURES = Limit("census-claim-fail", 10, timedelta(hours=24))

# Whatever is not a letter or a digit, in any script: Cyrillic, Greek, Arabic or Han
# names keep their letters ("Иванов" is not "Петров").
_SEPARATORS = re.compile(r"[\W_]+")


def normalise_name(name: str) -> str:
    """A name as a census and a person may each write it: accents, case, and the
    punctuation between parts do not matter ("Jean-Pierre" = "jean pierre", "Éloïse" =
    "ELOISE", "O'Brien" = "o brien")."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return _SEPARATORS.sub(" ", bare).strip()



def age_on(birth_date: date, day: date) -> int:
    """Full years of age on ``day``."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month,
                                                                birth_date.day))


def _key(secret: str, kind: str, consultation_id: str, *parts: str) -> str:
    return keyed_hash(secret, "urne-census-v1", kind, consultation_id, *parts)


def entry_key(secret: str, consultation_id: str, family_name: str, given_name: str,
              birth_date: date) -> str:
    return _key(secret, "person", consultation_id, normalise_name(family_name),
                normalise_name(given_name), birth_date.isoformat())


def email_key(secret: str, consultation_id: str, normalised_email: str) -> str:
    return _key(secret, "email", consultation_id, normalised_email)


# A store that cannot scan a consultation's entries keeps its eligible ones in this
# many buckets of their keys (Cassandra: partitions of about 7,800 for a city's
# million; 64 before 2026-12-02: see ``buckets.with_earlier``).
# The entry an address listed for several people (a family's) maps to: none. Kept, not
# dropped, so a later part or upload listing it for one of them leaves it shared.
SHARED = ""

BUCKETS = 128


def bucket(entry_key: str) -> int:
    """The CRC-32 of the entry key, modulo ``BUCKETS`` (keys are HMACs: evenly spread)."""
    return zlib.crc32(entry_key.encode()) % BUCKETS


def buckets(entry_key: str) -> list[int]:
    """Where a key's rows may be: its bucket, and the earlier layout's if other."""
    return with_earlier(bucket(entry_key))


@dataclass(frozen=True)
class CensusEntry:
    consultation_id: str
    entry_key: str
    district: str | None
    eligible: bool
    claimed_by: str | None = None  # the person id of the account that claimed it


def eligible(resident: bool, birth_date: date, minimum_age: int | None, on: date) -> bool:
    return resident and (minimum_age is None or age_on(birth_date, on) >= minimum_age)
