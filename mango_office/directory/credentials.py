"""The SIP credentials the sync gives a person: a login Mango accepts, a password.

Mango's own rules for both (results 3120 and 3121) live in
:mod:`mango_office.rules`; here they meet people's names, Cyrillic ones
included, and the logins the PBX already uses.
"""

import re
import secrets
import unicodedata

from ..rules import is_valid_mango_password, is_valid_sip_login


def generate_sip_password(length=16):
    # No look-alike characters: the password is read off the screen once and typed into
    # a phone.
    lower = "abcdefghijkmnpqrstuvwxyz"
    upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    digits = "23456789"
    pool = lower + upper + digits
    length = max(length, 8)
    while True:
        chars = [secrets.choice(lower), secrets.choice(upper), secrets.choice(digits)]
        chars += [secrets.choice(pool) for _i in range(length - 3)]
        secrets.SystemRandom().shuffle(chars)
        password = "".join(chars)
        if is_valid_mango_password(password):
            return password


_SIP_LOGIN_CHARS = re.compile(r"[^a-z0-9]")


_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "-",
            "y",
            "-",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def _ascii_slug(text):
    text = (text or "").lower()
    out = []
    for char in text:
        repl = _CYRILLIC.get(char)
        if repl is not None:
            out.append("" if repl == "-" else repl)
        else:
            out.append(
                unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            )
    return _SIP_LOGIN_CHARS.sub("", "".join(out))


class _SipTaken(set):
    """Already-normalised SIP login locals (lower case, no domain): no per-call rebuild."""


def sip_login_for(login, extension, taken=()):
    """A SIP login Mango accepts (3121) that nobody on the PBX uses yet.

    The person's own login reads best in a softphone; the extension makes it unique and
    valid when the login is short, numeric or not transliterable.
    """
    if not (isinstance(taken, _SipTaken) or getattr(taken, "normalised", False)):
        taken = {t.lower().split("@")[0] for t in taken}
    local = re.split(r"[@\\]", login or "")[-1 if "\\" in (login or "") else 0]
    base = _ascii_slug(local)
    ext = re.sub(r"\D", "", str(extension or ""))
    candidates = []
    if base:
        candidates.append(base)
        if ext:
            candidates.append(f"{base}{ext}")
    if ext:
        candidates.append(f"sip{ext}")
    candidates.append("sipuser")
    for cand in candidates:
        if is_valid_sip_login(cand) and cand not in taken:
            return cand
    stem = next(c for c in candidates if is_valid_sip_login(c))
    n = 2
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"
