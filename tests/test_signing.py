"""The request signature against Mango's published vectors (reference §1.3, §9)."""

import pytest

from mango_office import signing

KEY = "<YOUR_API_KEY>"
SALT = "<YOUR_API_SALT>"

# PHPEX, the official PHP examples: literal placeholders as key and salt.
OFFICIAL_VECTORS = [
    (
        '{"command_id":"your-command-id","from":{"extension":"<extension>","number":""},"to_number":"<to_number>"}',
        "afdeb462cd5e0e422a9c9220390124608df06a4472cb1add6ebd6e24184bd15a",
    ),
    (
        '{"command_id":"your-command-id","call_id":"<CALL_ID>"}',
        "2d1d01246f52cec1fdb44f2a4d7091dc54f67e318369c0628201d66b5d336ef0",
    ),
    (
        '{"key":"<REQUEST_KEY>"}',
        "515069b8c079df62f408e36dd7933912b8e86d833c5927ee77eb4b68d766c4f5",
    ),
    (
        (
            '{"date_from":"1445288400","date_to":"1445374859","from":{"extension":"","number":""},'
            '"to":{"extension":"","number":""}}'
        ),
        "94e263aa0aa65d77481b86e9224fa2230265faa387322e40716389406982c0fb",
    ),
]


@pytest.mark.parametrize(("json_str", "expected"), OFFICIAL_VECTORS)
def test_official_vectors(json_str, expected):
    assert signing.sign(KEY, json_str, SALT) == expected


@pytest.mark.parametrize(("json_str", "expected"), OFFICIAL_VECTORS)
def test_compact_dumps_reproduces_the_signed_string(json_str, expected):
    import json

    payload = json.loads(json_str)
    form = signing.build_form(KEY, SALT, payload)
    assert form == {"vpbx_api_key": KEY, "sign": expected, "json": json_str}


def test_recording_link_vector():
    assert (
        signing.recording_link_sign("123", 1525597727500, "Rofkdgl33fd=", "789")
        == "9867bfdc661049959450fbad35c10ef2a41120094bda492dd0f085ba4def7df0"
    )


def test_dumps_keeps_cyrillic_unescaped_and_compact():
    assert signing.dumps({"name": "Иван", "a": [1, 2]}) == '{"name":"Иван","a":[1,2]}'


def test_verify_valid_signature():
    json_str, expected = OFFICIAL_VECTORS[1]
    assert signing.verify(KEY, json_str, expected, SALT)


@pytest.mark.parametrize(
    "respelt",
    [
        str.upper,
        lambda s: s[:10].upper() + s[10:],
        lambda s: f" {s}",
        lambda s: f"{s}\n",
        lambda s: f"{s}\x00",
    ],
)
def test_only_mangos_lowercase_hex_verifies(respelt):
    """Mango writes the signature in lowercase hex; any other spelling is refused."""
    json_str, expected = OFFICIAL_VECTORS[1]
    assert not signing.verify(KEY, json_str, respelt(expected), SALT)


def test_text_no_utf8_can_carry_never_verifies():
    # A lone surrogate cannot be signed: refused, not an exception.
    assert not signing.verify(KEY, '{"a":"\ud800"}', "0" * 64, SALT)
    assert not signing.verify(KEY, "{}", "\ud800" * 64, SALT)
    assert not signing.verify_form(
        {"vpbx_api_key": "\udc00", "sign": "0", "json": "{}"}, KEY, SALT
    )


@pytest.mark.parametrize(
    "received",
    [
        None,
        "",
        "0" * 64,
        "2d1d01246f52cec1fdb44f2a4d7091dc54f67e318369c0628201d66b5d336ef1",
        "not-hex-at-all",
        "Подпись",
    ],
)
def test_verify_rejects_missing_or_bad_signature(received):
    json_str, _ = OFFICIAL_VECTORS[1]
    assert not signing.verify(KEY, json_str, received, SALT)


def test_verify_is_over_the_raw_json_not_a_reserialisation():
    json_str, expected = OFFICIAL_VECTORS[1]
    spaced = json_str.replace(",", ", ")
    assert not signing.verify(KEY, spaced, expected, SALT)
    assert signing.verify(KEY, spaced, signing.sign(KEY, spaced, SALT), SALT)


def test_verify_form():
    form = signing.build_form("k", "s", {"entry_id": "E1"})
    assert signing.verify_form(form, "k", "s")
    assert not signing.verify_form(form, "k", "other-salt")
    assert not signing.verify_form({**form, "vpbx_api_key": "other"}, "k", "s")
    assert not signing.verify_form(
        {"vpbx_api_key": "k", "json": form["json"]}, "k", "s"
    )
    assert not signing.verify_form({}, "k", "s")


def test_sign_is_not_an_hmac():
    import hashlib
    import hmac

    json_str = "{}"
    hmac_sign = hmac.new(
        SALT.encode(), (KEY + json_str).encode(), hashlib.sha256
    ).hexdigest()
    assert signing.sign(KEY, json_str, SALT) != hmac_sign
