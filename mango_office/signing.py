"""Mango's request signature, used in both directions.

``sign = sha256_hex(vpbx_api_key + json + vpbx_api_salt)`` — plain SHA-256 over the
concatenation, not an HMAC (reference §1.3, verified against the official vectors).

What is accepted: exactly the 64 lowercase hexadecimal digits Mango sends (PHP's
``hash()``, Go's ``%x``, C#'s ``x2`` and Python's ``hexdigest()`` all write
lowercase), computed over the UTF-8 bytes of the ``json`` field as received.
An uppercase, spaced or otherwise rewritten signature is refused: no Mango
client sends one, and one spelling per signature leaves nothing to argue about.
The comparison is constant-time (:func:`hmac.compare_digest`).
"""

import hashlib
import hmac
import json


def dumps(payload):
    """Compact JSON exactly as it is put in the ``json`` form field and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def sign(key, json_str, salt):
    return hashlib.sha256((key + json_str + salt).encode("utf-8")).hexdigest()


def recording_link_sign(key, timestamp, recording_id, salt):
    """Signature of the unauthenticated recording link (a different formula, §4.1.2)."""
    return hashlib.sha256(f"{key}{timestamp}{recording_id}{salt}".encode()).hexdigest()


def build_form(key, salt, payload):
    """The three form fields of a signed request: ``vpbx_api_key``, ``sign``, ``json``."""
    json_str = payload if isinstance(payload, str) else dumps(payload)
    return {"vpbx_api_key": key, "sign": sign(key, json_str, salt), "json": json_str}


def _bytes(text):
    # A lone surrogate has no UTF-8 form; "surrogatepass" keeps the comparison
    # going (and failing) instead of raising.
    return text.encode("utf-8", "surrogatepass")


def verify(key, json_str, received_sign, salt):
    """Check a signature over the raw ``json`` field exactly as received.

    Only Mango's own spelling verifies: 64 lowercase hex digits (see the module
    docstring). The comparison is constant-time so the signature cannot be
    guessed byte by byte. Non-string input (a missing field) never verifies, nor
    does text no UTF-8 can carry (nobody can have signed it).
    """
    if not all(isinstance(v, str) for v in (key, json_str, received_sign, salt)):
        return False
    try:
        expected = sign(key, json_str, salt)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(_bytes(received_sign), expected.encode())


def verify_form(form, key, salt):
    """Verify an incoming form (``vpbx_api_key``, ``sign``, ``json``) for one account."""
    received_key = form.get("vpbx_api_key")
    if not isinstance(received_key, str) or not hmac.compare_digest(
        _bytes(received_key), _bytes(key)
    ):
        return False
    return verify(key, form.get("json"), form.get("sign"), salt)
