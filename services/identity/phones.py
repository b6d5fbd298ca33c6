"""Phone numbers that may receive a sign-in code by SMS. No I/O here.

SMS pumping (toll fraud) is a fraudster asking a sign-in form for codes to numbers
whose operators pay them per message received: premium or international ranges, by the
thousand. Two rules stop it where it starts, without limiting a single voter:

- **a country allow-list** (``URNE_SMS_COUNTRIES``, ISO 3166 codes): a city's election
  texts the countries its voters live in, not the world; empty, no SMS is sent at all;
- **mobile numbers only**: an SMS code goes to a phone that can read it. Premium-rate,
  shared-cost, toll-free and other special ranges, where pumping pays, are refused.

Numbers are checked against libphonenumber's metadata (Google's, through the
``phonenumbers`` package): valid for their country, of a mobile type. They are kept in
E.164 form (``+33612345678``), the one key of a person registered by SMS.
"""

from __future__ import annotations

from collections.abc import Collection

import phonenumbers
from phonenumbers import PhoneNumberType

from urne.platform.errors import DomainError

# Types that are (or may be) a mobile: some countries (the United States, Canada) do
# not tell mobile and fixed numbers apart.
_MOBILE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


def countries(setting: str) -> frozenset[str]:
    """The allow-list from its setting: ISO 3166 alpha-2 codes, comma-separated."""
    codes = frozenset(c.strip().upper() for c in setting.split(",") if c.strip())
    unknown = sorted(c for c in codes if phonenumbers.country_code_for_region(c) == 0)
    if unknown:
        raise ValueError(f"URNE_SMS_COUNTRIES: not a country with phone numbers: "
                         f"{', '.join(unknown)} (ISO 3166 alpha-2 codes, e.g. FR,BE)")
    return codes


def textable(number: str, allowed: Collection[str]) -> str:
    """``number`` (E.164) in its normal form if a code may be texted to it; a 422
    (``phone_invalid`` or ``phone_refused``) otherwise."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise _invalid() from exc
    if not phonenumbers.is_valid_number(parsed):
        raise _invalid()
    country = phonenumbers.region_code_for_number(parsed)
    if country not in allowed:
        raise DomainError("sign-in codes are not sent by SMS to this country's numbers here; "
                          "use an e-mail address, or ask the organisers",
                          code="phone_refused", status=422)
    if phonenumbers.number_type(parsed) not in _MOBILE:
        raise DomainError("sign-in codes are sent by SMS to mobile numbers only",
                          code="phone_refused", status=422)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _invalid() -> DomainError:
    return DomainError("this is not a valid phone number: write it in international form, "
                       "e.g. +33612345678", code="phone_invalid", status=422)
