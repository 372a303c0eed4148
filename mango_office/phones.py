"""Phone numbers as Mango sends them and as people type them, made comparable.

Mango writes Russian numbers as ``7XXXXXXXXXX`` (11 digits, no ``+``) and SIP
parties as ``sip:user@domain`` (reference §2.4, §6); people type ``8 (495) …``.
Everything is normalised to E.164 (``+74951234567``) so a caller can be matched
to a partner, and turned back into Mango's form when a command is sent.
"""

import functools
import re

import phonenumbers

_SEPARATORS = re.compile(r"[\s()\-.\u00a0\u2010-\u2015/]")
_SIP_RE = re.compile(r"^sips?:[^\s@]+(@[^\s@]+)?$", re.IGNORECASE)


def _text(number):
    if number is None or isinstance(number, bool):
        return ""
    if isinstance(number, int):
        return str(number)
    if not isinstance(number, str):
        return ""
    return number.strip()


def _parse(text, default_region):
    """The parsed number and whether the input was unambiguously international."""
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    compact = _SEPARATORS.sub("", text)
    if not compact:
        return None, False
    if compact.startswith("+"):
        candidates = [(text, None, True)]
    elif compact.isdigit() and len(compact) == 11 and compact[0] == "7":
        # Mango's own form: country code 7 without the plus, whatever the company.
        candidates = [("+" + compact, None, True)]
    else:
        region = (default_region or "RU").upper()
        candidates = [(text, region, False)]
        if compact.startswith("00") and compact.isdigit():
            # "00" is the international prefix in most of the world, though not in
            # Russia (810); typed on a Russian PBX it still means "+".
            candidates.append(("+" + compact[2:], None, True))
        if (
            region != "RU"
            and compact.isdigit()
            and len(compact) == 11
            and compact[0] == "8"
        ):
            # "8 (495) …" is the Russian trunk prefix; a PBX on Mango is Russian
            # first, even for a company registered elsewhere.
            candidates.append((text, "RU", False))
        if compact.isdigit() and len(compact) >= 11 and not compact.startswith("0"):
            # Mango sends every PSTN number in international form without the
            # plus (358942417700 for a Finnish caller, reference §2.4). Taken
            # only when no national reading fits, only if valid, and only from
            # 11 digits: longer than any Russian national number, so a typed
            # "4951234567" never turns into a German one.
            candidates.append(("+" + compact, None, False))
    for candidate, region, international in candidates:
        try:
            parsed = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return parsed, international
        # New ranges (and Mango's own test numbers) fail the metadata check: an
        # explicitly international number of a possible length is still taken.
        if international and phonenumbers.is_possible_number(parsed):
            return parsed, international
    return None, False


def _is_russian_trunk_form(text, default_region):
    """``8`` + ten digits, read in Russia: the trunk prefix before a national
    number. Not ``810…`` (Russia's old international prefix) nor ``80…`` (no
    Russian number starts with 0)."""
    compact = _SEPARATORS.sub("", text)
    return (
        (default_region or "RU").upper() == "RU"
        and len(compact) == 11
        and compact.isascii()
        and compact.isdigit()
        and compact[0] == "8"
        and compact[1] != "0"
        and not compact.startswith("810")
    )


def normalize(number, default_region="RU"):
    """``+E164`` for a phone number, the lowercased URI for ``sip:``, else None."""
    text = _text(number)
    if not text:
        return None
    return _normalize_text(text, default_region)


# One call's number is normalised several times while it is identified (the
# call's own number, then each identifiable model asks), and a busy line calls
# again: the result depends on the text and the region alone (phonenumbers'
# metadata is fixed), so remembering the last few thousand is exact, and bounded.
@functools.lru_cache(maxsize=4096)
def _normalize_text(text, default_region):
    if text.lower().startswith(("sip:", "sips:")):
        return text.lower() if _SIP_RE.match(text) else None
    compact = _SEPARATORS.sub("", text).removeprefix("+")
    if (
        len(compact) == 11
        and compact[0] == "7"
        and compact.isascii()
        and compact.isdigit()
    ):
        # Mango's own form, on every event of every call: any 7 + ten digits is a
        # possible +7 number, so the parse below would return exactly this, at
        # ten times the cost.
        return "+" + compact
    if _is_russian_trunk_form(text, default_region):
        # "8 916 …" typed on a Russian PBX: what the parse below returns for a
        # valid number (it strips the trunk prefix 8), at a tenth of the cost.
        # Otherwise the parse decides (an invalid number may still be foreign).
        national = _SEPARATORS.sub("", text)[1:]
        candidate = phonenumbers.PhoneNumber(
            country_code=7, national_number=int(national)
        )
        if phonenumbers.is_valid_number(candidate):
            return "+7" + national
    parsed, _ = _parse(text, default_region)
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def to_mango(number, default_region="RU"):
    """The form commands take: ``74951234567`` (digits, no plus) or the SIP URI."""
    normalized = normalize(number, default_region)
    if normalized is None or normalized.startswith(("sip:", "sips:")):
        return normalized
    return normalized.lstrip("+")


def is_valid(number, region="RU"):
    text = _text(number)
    if not text or text.lower().startswith(("sip:", "sips:")):
        return bool(text) and bool(_SIP_RE.match(text))
    parsed, _ = _parse(text, region)
    return parsed is not None and phonenumbers.is_valid_number(parsed)


def region_of(number, default_region="RU"):
    """ISO country of a number (``RU``, ``FI`` …), None for SIP URIs and garbage."""
    normalized = normalize(number, default_region)
    if normalized is None or not normalized.startswith("+"):
        return None
    return phonenumbers.region_code_for_number(phonenumbers.parse(normalized, None))


def display(number, default_region="RU"):
    """For people: ``+7 495 123-45-67``; SIP URIs as they are; garbage as typed."""
    normalized = normalize(number, default_region)
    if normalized is None:
        return _text(number) or None
    if not normalized.startswith("+"):
        return normalized
    return phonenumbers.format_number(
        phonenumbers.parse(normalized, None),
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    )


def same_number(a, b, default_region="RU"):
    left = normalize(a, default_region)
    return left is not None and left == normalize(b, default_region)


def search_variants(number, default_region="RU"):
    """Spellings under which a number may already be stored, for matching partners.

    Partners' phones are free text; a caller ``+74951234567`` may be saved as
    ``84951234567``, ``74951234567`` or ``4951234567`` (then with separators, which
    the caller strips before comparing).
    """
    normalized = normalize(number, default_region)
    if normalized is None:
        return []
    if not normalized.startswith("+"):
        return [normalized]
    parsed = phonenumbers.parse(normalized, None)
    national = str(parsed.national_number)
    variants = [normalized, normalized[1:], national]
    if parsed.country_code == 7:
        variants.append("8" + national)
    return list(dict.fromkeys(variants))


#: Characters that never stand for a digit: ASCII, the no-break space,
#: Cyrillic ("доб." before an extension) and the Unicode dashes. Anything else
#: may be a digit to ``normalize`` (full-width, Arabic-Indic, superscript …).
#: Regular expressions here are written for Python and PostgreSQL alike.
UNSAFE_CHARACTER = r"[^\x01-\x7f\u00a0\u0400-\u04ff\u2010-\u2015]"
#: The one Latin word a phone may carry without its letters dialling digits
#: (removed once, case-insensitively, before looking for other letters).
EXTENSION_WORD = r"ext(n|\.)?|x"
LATIN_LETTER = r"[A-Za-z]"
_UNSAFE = re.compile(UNSAFE_CHARACTER)
_EXTENSION = re.compile(EXTENSION_WORD, re.IGNORECASE)
_LATIN = re.compile(LATIN_LETTER)
#: The subscriber part of a number stays in one piece however it is written
#: (Argentina's mobile "15" goes between the area code and a 6-digit subscriber
#: number): six digits, not seven.
TAIL_LENGTH = 6


def needs_parsing(text):
    """Whether ``text``'s ASCII digits may not show the number it is: letters
    that dial digits (a vanity number), digits of another script."""
    text = _text(text)
    return bool(
        _UNSAFE.search(text) or _LATIN.search(_EXTENSION.sub("", text, count=1))
    )


def search_tail(number):
    """The end of a normalised number that every spelling of it shows.

    A text that ``normalize`` turns into ``number`` and that does not need
    parsing (``needs_parsing``) holds the last ``TAIL_LENGTH`` digits of its
    national significant number in order, with nothing but non-digits between
    them — national with a trunk prefix, international, with a carrier code,
    a "(0)" or an extension after it. So a table of free-text phones is
    narrowed in SQL to the rows matching ``tail_pattern`` (or needing
    parsing), and only those are normalised. None for a SIP address or
    anything not E.164.
    """
    if not isinstance(number, str) or not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.national_significant_number(parsed)[-TAIL_LENGTH:] or None


def tail_pattern(number):
    """``search_tail`` as a regular expression on the text as written (one
    match, no rewriting of every row's text: a fraction of the cost in SQL)."""
    tail = search_tail(number)
    return "[^0-9]*".join(tail) if tail else None


# "+" and up to 18 digits without a leading zero (E.164 allows 15; a country
# code never starts with 0): read as a number, exactly one per such text, and
# within PostgreSQL's bigint. The SQL twin is mango_phone_key() (res.partner).
_E164_KEY = re.compile(r"\+[1-9][0-9]{0,17}", re.ASCII)


def e164_key(e164):
    """The digits of an E.164 number as an integer, or None if it has another
    shape; two numbers have the same key exactly when they are the same text.

    A bigint key makes the caller lookup's index denser than one on text (an
    8-byte key instead of a 13-byte string with its length header).
    """
    if not isinstance(e164, str) or not _E164_KEY.fullmatch(e164):
        return None
    return int(e164[1:])


def digits(number):
    """Only the digits of free text, for comparing against stored variants."""
    return re.sub(r"\D", "", _text(number))
