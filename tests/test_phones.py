"""Phone normalisation (E.164) and Mango's own number form."""

import random
import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mango_office import phones


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 (495) 123-45-67", "+74951234567"),
        ("84951234567", "+74951234567"),
        ("+7 495 123 45 67", "+74951234567"),
        ("+7(495)123-45-67", "+74951234567"),
        ("74951234567", "+74951234567"),  # Mango's 7XXXXXXXXXX
        (79001234567, "+79001234567"),
        ("tel:+74951234567", "+74951234567"),
        ("+358 40 123 4567", "+358401234567"),
        ("810 358 40 123 4567", "+358401234567"),  # Russian international prefix
        ("SIP:User00000@Tech.MangoSip.ru", "sip:user00000@tech.mangosip.ru"),
        ("sip:line00000@tech.mangosip.ru", "sip:line00000@tech.mangosip.ru"),
    ],
)
def test_normalize_ru(raw, expected):
    assert phones.normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "abc",
        "123",
        "101",
        "sip:",
        "sip:two words@x",
        "+",
        "8-800",
        True,
        3.5,
        {},
    ],
)
def test_garbage_is_none(raw):
    assert phones.normalize(raw) is None
    assert phones.to_mango(raw) is None


def test_default_region_from_company_country():
    assert phones.normalize("040 123 4567", "FI") == "+358401234567"
    assert phones.normalize("(202) 555-0143", "US") == "+12025550143"
    # Mango's 7-form stays Russian whatever the company's country.
    assert phones.normalize("74951234567", "FI") == "+74951234567"
    # ... and so does the Russian trunk prefix typed by a Russian customer.
    assert phones.normalize("8 (495) 123-45-67", "FI") == "+74951234567"


def test_national_number_not_valid_in_region_is_none():
    assert phones.normalize("0401234567", "RU") is None


def test_to_mango():
    assert phones.to_mango("+7 (495) 123-45-67") == "74951234567"
    assert phones.to_mango("8 (495) 123-45-67") == "74951234567"
    assert phones.to_mango("+358 40 1234567") == "358401234567"
    assert phones.to_mango("sip:Op@Example.mangosip.ru") == "sip:op@example.mangosip.ru"


def test_is_valid_and_region_of():
    assert phones.is_valid("+74951234567")
    assert phones.is_valid("sip:user@domain")
    assert not phones.is_valid("123")
    assert not phones.is_valid(
        "74001234567"
    )  # possible, but not an assigned Russian range
    assert (
        phones.normalize("74001234567") == "+74001234567"
    )  # ... yet Mango sends such numbers
    assert phones.region_of("+358401234567") == "FI"
    assert phones.region_of("8 (495) 123-45-67") == "RU"
    assert phones.region_of("sip:a@b") is None
    assert phones.region_of("junk") is None


def test_same_number_and_search_variants():
    assert phones.same_number("8 (495) 123-45-67", "+74951234567")
    assert not phones.same_number("8 (495) 123-45-67", "+74951234568")
    assert not phones.same_number("junk", "junk")
    assert phones.search_variants("8 (495) 123-45-67") == [
        "+74951234567",
        "74951234567",
        "4951234567",
        "84951234567",
    ]
    assert phones.search_variants("+358401234567") == [
        "+358401234567",
        "358401234567",
        "401234567",
    ]
    assert phones.search_variants("junk") == []
    assert phones.digits("+7 (495) 123-45-67") == "74951234567"


def test_double_zero_international_prefix():
    assert phones.normalize("00358401234567") == "+358401234567"
    assert phones.normalize("00 7 495 123 45 67", "FI") == "+74951234567"
    assert phones.normalize("+7 495 123-45-67 доб. 12") == "+74951234567"


def test_display():
    assert phones.display("74951234567") == "+7 495 123-45-67"
    assert phones.display("sip:Op@Acme.mangosip.ru") == "sip:op@acme.mangosip.ru"
    assert phones.display(" 101 ") == "101"
    assert phones.display(None) is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        # Mango's international form without the plus, for any country.
        ("358942417700", "RU", "+358942417700"),
        ("358401234567", "RU", "+358401234567"),
        ("358401234567", "FI", "+358401234567"),
        ("447911123456", "RU", "+447911123456"),
        ("14155550132", "RU", "+14155550132"),
        # National readings still win, and short or ambiguous digits stay unknown.
        ("4951234567", "RU", "+74951234567"),
        ("4951234567", "FI", None),
        ("0401234567", "RU", None),
        ("12345678", "RU", None),
    ],
)
def test_mango_international_form_of_foreign_numbers(raw, region, expected):
    assert phones.normalize(raw, region) == expected


def test_russian_trunk_form_shortcut_agrees_with_the_parse():
    # "8…" numbers skip the full parse when valid; whatever the shortcut
    # returns must be what the parse returns, for every prefix a caller may
    # type (valid, invalid, 810 international, 80… and foreign-looking ones).
    rng = random.Random(8)
    numbers = [f"8{prefix:03d}{rng.randrange(10**7):07d}" for prefix in range(1000)]
    numbers += [f"8 ({n[1:4]}) {n[4:7]}-{n[7:9]}-{n[9:]}" for n in numbers[::7]]
    for number in numbers:
        parsed, _ = phones._parse(number, "RU")
        expected = (
            None
            if parsed is None
            else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        )
        assert phones.normalize(number, "RU") == expected, number


# The caller lookup matches numbers by their integer key (res.partner's phone
# keys): every E.164 text the normaliser produces must have one, and the key must
# give the text back, or a contact would be missed or another one found.
@given(
    st.one_of(
        st.text(alphabet="0123456789 +()-.", max_size=20),
        st.from_regex(r"\A(\+7|8|7)[0-9]{10}\Z"),
        st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"),
        st.text(max_size=20),
    ),
    st.sampled_from(["RU", "FI", "US", "DE"]),
)
@settings(max_examples=500, deadline=None)
def test_every_normalised_number_has_a_key_that_gives_it_back(raw, region):
    normalized = phones.normalize(raw, region)
    key = phones.e164_key(normalized)
    if normalized and normalized.startswith("+"):
        assert key is not None
        assert f"+{key}" == normalized
    else:
        assert key is None


@pytest.mark.parametrize(
    "text",
    [None, False, "", "+", "+0123", "74951234567", "+7 495", "+7495１", "+" + "9" * 19],
)
def test_texts_that_are_not_e164_have_no_key(text):
    assert phones.e164_key(text) is None


def test_the_longest_key_fits_a_bigint():
    assert phones.e164_key("+" + "9" * 18) < 2**63


def _ascii_digits(text):
    return re.sub(r"[^0-9]", "", text)


def _spellings(region):
    """Ways people write their region's example numbers."""
    for number_type in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
    ):
        example = phonenumbers.example_number_for_type(region, number_type)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        for number_format in (
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.E164,
        ):
            text = phonenumbers.format_number(example, number_format)
            yield e164, text
            yield e164, phones.digits(text)
            yield e164, text.replace(" ", "-")
            yield e164, text.replace(" ", "\u00a0")
            yield e164, f"{text} доб. 101"
            yield e164, f"{text} ext. 7"
            yield e164, f"{text} x12"
        # A mobile as dialled within its country (Argentina: 0 + area + 15 + number).
        yield (
            e164,
            phonenumbers.format_number_for_mobile_dialing(
                example, region, with_formatting=True
            ),
        )


@pytest.mark.parametrize("region", sorted(phonenumbers.SUPPORTED_REGIONS))
def test_every_spelling_shows_the_search_tail_or_needs_parsing(region):
    checked = 0
    for e164, text in _spellings(region):
        if phones.needs_parsing(text) or phones.normalize(text, region) != e164:
            continue
        tail = phones.search_tail(e164)
        assert tail, e164
        assert tail in _ascii_digits(text), (region, text, e164, tail)
        assert re.search(phones.tail_pattern(e164), text), (region, text, e164)
        checked += 1
    if region == "AR":
        assert checked


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        # A 4-digit area code, "15", a 6-digit subscriber number: seven digits
        # from the end would straddle the "15".
        ("02966 15-42-3456", "AR", "+5492966423456"),
        ("0351 15-512-3456", "AR", "+5493515123456"),
        ("8 (495) 123-45-67", "RU", "+74951234567"),
        ("810 358 40 123 4567", "RU", "+358401234567"),
        ("+358 (0)40 123 4567", "FI", "+358401234567"),
    ],
)
def test_search_tail_of_spellings_people_use(text, region, e164):
    assert phones.normalize(text, region) == e164
    assert not phones.needs_parsing(text)
    assert phones.search_tail(e164) in _ascii_digits(text)
    assert re.search(phones.tail_pattern(e164), text)


@pytest.mark.parametrize(
    "text",
    [
        "8 800 FLOWERS",  # letters dial digits
        "+7 495 123-45-67 ext. 7 FLOWERS",
        "８ ４９５ １２３４５６７",  # full-width
        "٠٤٩٥١٢٣٤٥٦٧",  # Arabic-Indic
        "8 495 123 45 6⁷",  # a superscript is a digit to phonenumbers
        "+7 495 123-45-67 ext 1 x 2",  # a second extension word
        "8 800 XXX-12-34",
    ],
)
def test_texts_whose_digits_may_hide(text):
    assert phones.needs_parsing(text)


def test_search_tail_of_non_numbers():
    assert phones.search_tail("sip:user@example.com") is None
    assert phones.search_tail(None) is None
    assert phones.search_tail("+") is None
    assert phones.search_tail("+74951234567") == "234567"
    assert (
        phones.tail_pattern("+74951234567")
        == "2[^0-9]*3[^0-9]*4[^0-9]*5[^0-9]*6[^0-9]*7"
    )
    assert phones.tail_pattern("sip:101@example.com") is None
    for text in (
        "+7 (495) 123-45-67",
        "+7 495 123-45-67 доб. 101",
        "+7 495 123-45-67 EXT 101",
        "+7\u00a0495\u00a0123\u201345\u201367 x7",
    ):
        assert not phones.needs_parsing(text), text
