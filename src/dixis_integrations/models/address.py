"""Postal addresses, phone numbers and the Greek/Cypriot rules that govern them.

Greek postcodes are 5 digits ("104 31" is stored as "10431"), Cypriot ones 4; phones are
stored in E.164. Text (Greek script included) is kept as given, only stripped.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from dixis_integrations.models._types import Email, NonEmptyStr

__all__ = [
    "Address",
    "CountryCode",
    "E164Phone",
    "is_greek_mobile",
    "normalize_phone",
    "normalize_postcode",
    "split_street",
]

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2, upper case (``"GR"``, ``"CY"``)."""

_OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None

# Country calling codes we apply national rules to; other numbers get generic E.164 checks.
_GR: Final = "30"
_CY: Final = "357"
_PHONE_JUNK: Final = re.compile(r"[\s\-./()]")
_DIGITS: Final = re.compile(r"^[0-9]+$")


def normalize_phone(raw: str, default_country: str = "GR") -> str:
    """Normalise a phone number to E.164 (``+`` country code, national number).

    Greek numbers must have 10 national digits starting with 2 (landline) or 6 (mobile);
    Cypriot numbers 8 digits. Spaces, dashes, dots and brackets are ignored; ``00`` is
    read as ``+``. Numbers of other countries must carry their ``+`` prefix and are
    checked only for E.164 length (8 to 15 digits).

    Args:
        raw: the number as typed: ``"210 1234567"``, ``"6912345678"``,
            ``"0030 691 234 5678"``, ``"+357 99 123456"``.
        default_country: ISO 3166 alpha-2 country assumed when there is no prefix
            (``"GR"`` or ``"CY"``).

    Returns:
        The E.164 form, e.g. ``"+302101234567"``.

    Raises:
        ValueError: if the text is not a phone number or breaks the national rules.
    """
    # Fast paths for the two forms most numbers arrive in (same results as below):
    # a Greek national number and an E.164 Greek number, digits only.
    size = len(raw)
    if size == 10:
        if default_country == "GR" and raw[0] in "26" and raw.isascii() and raw.isdigit():
            return "+30" + raw
    elif size == 13 and raw.startswith("+30") and raw[3] in "26":
        digits = raw[1:]
        if digits.isascii() and digits.isdigit():
            return raw
    text = _PHONE_JUNK.sub("", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits or _DIGITS.match(digits) is None:
        raise ValueError("a phone number may only contain digits, spaces, dashes and a leading +")
    if not international:
        country = default_country.upper()
        if country == "GR":
            # A national number, or one written with its country code but no "+".
            digits = digits[2:] if len(digits) == 12 and digits.startswith(_GR) else digits
            digits = _GR + digits
        elif country == "CY":
            digits = digits[3:] if len(digits) == 11 and digits.startswith(_CY) else digits
            digits = _CY + digits
        else:
            raise ValueError(
                f"cannot tell the country code of a {country} number without a leading +"
            )
    if digits.startswith(_GR):
        national = digits[2:]
        if len(national) != 10 or national[0] not in "26":
            raise ValueError("a Greek number has 10 digits starting with 2 or 6")
    elif digits.startswith(_CY):
        national = digits[3:]
        if len(national) != 8:
            raise ValueError("a Cypriot number has 8 digits")
    elif not 8 <= len(digits) <= 15 or digits[0] == "0":
        raise ValueError("an E.164 number has 8 to 15 digits and no leading 0")
    return "+" + digits


def is_greek_mobile(e164: str) -> bool:
    """True for a Greek mobile number in E.164 form (``+30 69x xxx xxxx``).

    Args:
        e164: a number already normalised by :func:`normalize_phone`.
    """
    return len(e164) == 13 and e164.startswith("+3069") and e164[1:].isdigit()


E164Phone = Annotated[str, AfterValidator(normalize_phone)]
"""A phone number stored in E.164; national Greek numbers (no ``+``) are accepted."""

_GREEK_POSTCODE: Final = re.compile(r"^[0-9]{3} ?[0-9]{2}$")
_CYPRUS_POSTCODE: Final = re.compile(r"^[0-9]{4}$")


def normalize_postcode(postcode: str, country: str = "GR") -> str:
    """Check and normalise a postcode for ``country``.

    Args:
        postcode: as typed; ``"104 31"`` and ``"10431"`` are the same Greek postcode.
        country: ISO 3166 alpha-2 code.

    Returns:
        Greece: 5 digits without a space. Cyprus: 4 digits. Elsewhere: the stripped text.

    Raises:
        ValueError: if it does not fit the country's format (other countries: empty or
            longer than 16 characters).
    """
    if country == "GR" and len(postcode) == 5 and postcode.isascii() and postcode.isdigit():
        return postcode  # the common case, already normalised
    text = postcode.strip()
    if country == "GR":
        if _GREEK_POSTCODE.match(text) is None:
            raise ValueError("a Greek postcode has 5 digits, e.g. 10431 or 104 31")
        return text.replace(" ", "")
    if country == "CY":
        if _CYPRUS_POSTCODE.match(text) is None:
            raise ValueError("a Cypriot postcode has 4 digits")
        return text
    if not text or len(text) > 16:
        raise ValueError("a postcode has 1 to 16 characters")
    return text


_NUMBER: Final = r"[0-9]+[A-Za-zΑ-Ωα-ω]?(?:\s*[-/]\s*[0-9]+[A-Za-zΑ-Ωα-ω]?)?"
_TRAILING_NUMBER: Final = re.compile(rf"^(?P<street>.*?\S)[\s,]+(?P<number>{_NUMBER})$")
_LEADING_NUMBER: Final = re.compile(rf"^(?P<number>{_NUMBER})[\s,]+(?P<street>\S.*)$")
# "25 Μαρτίου", "28 Οκτωβρίου": streets named after dates start with a number that is
# part of the name, not a house number.
_MONTHS_GENITIVE: Final = (
    "ιανουαριου",
    "φεβρουαριου",
    "μαρτιου",
    "απριλιου",
    "μαιου",
    "ιουνιου",
    "ιουλιου",
    "αυγουστου",
    "σεπτεμβριου",
    "οκτωβριου",
    "νοεμβριου",
    "δεκεμβριου",
)
_ACCENTS: Final = str.maketrans("άέήίϊΐόύϋΰώ", "αεηιιιουυυω")


def split_street(line: str) -> tuple[str, str | None]:
    """Split an address line into street and house number.

    The number may follow (``"Ερμού 25"``) or precede (``"25 Ermou"``) the street, may
    carry a letter (``"10Α"``) or be a range (``"25-27"``). A street named after a date
    (``"25ης Μαρτίου"``, ``"28 Οκτωβρίου 4"``) keeps its leading number.

    Args:
        line: one address line.

    Returns:
        ``(street, number)``; ``number`` is ``None`` when none is found.
    """
    text = " ".join(line.split()).strip(" ,")
    match = _TRAILING_NUMBER.match(text)
    if match is not None:
        return match["street"].rstrip(" ,"), match["number"]
    match = _LEADING_NUMBER.match(text)
    if match is not None:
        street = match["street"].rstrip(" ,")
        first_word = street.split(" ", 1)[0].lower().translate(_ACCENTS)
        if first_word not in _MONTHS_GENITIVE:
            return street, match["number"]
    return text, None


class Address(BaseModel):
    """A postal address. Greek and Cypriot postcodes and phones are checked strictly.

    ``country`` (ISO 3166 alpha-2, default ``"GR"``) decides the postcode format and
    the country assumed for phones typed without a ``+`` prefix; phones are stored in
    E.164. Text fields are stripped and otherwise kept exactly (Greek script included).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: CountryCode = "GR"
    name: NonEmptyStr
    company: _OptionalText = None
    street: NonEmptyStr
    number: _OptionalText = None
    city: NonEmptyStr
    postcode: str
    region: _OptionalText = None
    phone: str | None = None
    mobile: str | None = None
    email: Email | None = None
    floor: _OptionalText = None
    notes: _OptionalText = None

    @field_validator("postcode")
    @classmethod
    def _check_postcode(cls, value: str, info: ValidationInfo) -> str:
        return normalize_postcode(value, info.data.get("country", "GR"))

    @field_validator("phone", "mobile")
    @classmethod
    def _check_phone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return normalize_phone(value, info.data.get("country", "GR"))
