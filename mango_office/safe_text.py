"""Text from outside: what it may contain, and how to keep it when it is refused.

Two characters break storage in the middle of a request: PostgreSQL text cannot
hold NUL (psycopg2 raises ``ValueError``), and UTF-8 cannot encode a lone
surrogate (``UnicodeEncodeError``), which JSON's ``\\ud800`` escape produces. Other
control characters (and the invisible bidirectional overrides) store fine but
have no business in identifiers, phone numbers or names, and make logs and
screens lie. So every boundary (webhooks, the
website widget) checks text with :func:`problem` before accepting it, and keeps
what it refused with :func:`storable`, which escapes instead of dropping.
"""

import re

# C0 and C1 controls, DEL, the bidirectional embeddings, overrides and isolates
# (invisible, they make text display other than it reads), and UTF-16
# surrogates (lone ones: Python strings decoded from UTF-8 never hold paired ones).
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# The same, except tab, line feed and carriage return (free text may hold them).
_CONTROL_BUT_WHITESPACE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

TRUNCATION_MARK = "…"


def problem(text, multiline=False):
    """Why ``text`` cannot be accepted, or ``None``.

    :param bool multiline: allow tab, line feed and carriage return
    :return: ``"nul"``, ``"surrogate"``, ``"control"`` or ``None``
    """
    match = (_CONTROL_BUT_WHITESPACE if multiline else _ANY_CONTROL).search(text)
    if match is None:
        return None
    char = match.group()
    if char == "\x00":
        return "nul"
    if "\ud800" <= char <= "\udfff":
        return "surrogate"
    return "control"


def _escape(match):
    return f"\\u{ord(match.group()):04x}"


def storable(text, limit, multiline=True):
    """``text`` made safe for any text column and any screen, at most ``limit``
    characters (a cut is marked with "…").

    NUL, lone surrogates and invisible controls become ``\\uXXXX`` escapes, so
    what was refused stays readable and nothing is silently dropped.

    :param bool multiline: keep tab, line feed and carriage return as they are
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    # Cut before escaping (escapes are longer) and again after.
    escaped = _CONTROL_BUT_WHITESPACE if multiline else _ANY_CONTROL
    text = escaped.sub(_escape, text[: limit + 1])
    if len(text) > limit:
        text = text[: max(limit - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK
    return text
