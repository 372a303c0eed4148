"""Mango's own rules that more than one part of the product applies.

The client checks what it sends, the directory planner generates what it will
send, and the Odoo addons read what came back; all of them must agree with
Mango, so each rule is written here once (reference mango-vpbx-api.md). The
simulator keeps its own copy of the rules on purpose: it stands in for Mango,
and a client bug must not pass a test because both sides share the same code.
"""

import datetime
import re

# Moscow has kept UTC+3 all year since 2014; extended statistics take its wall time
# (reference §4.2).
MOSCOW = datetime.timezone(datetime.timedelta(hours=3))
# The same zone by name, for what is shown to someone who chose no zone: Mango's own.
MOSCOW_TZ_NAME = "Europe/Moscow"

# The statuses of a folded call (mango_office.calls) once it is over: it was
# answered, or nobody answered it (missed when it came in, failed when it went out).
FINISHED_STATUSES = ("answered", "missed", "failed")


def is_valid_mango_password(password):
    """Mango result 3120: at least 8 characters with lower, upper case and digits.

    Mango states the rule for employee passwords; for SIP passwords it is
    UNCONFIRMED, and applied all the same: a local refusal costs nothing, where a
    refused request costs the only 3xxx allowed within two minutes."""
    return (
        isinstance(password, str)
        and len(password) >= 8
        and bool(re.search(r"[a-z]", password))
        and bool(re.search(r"[A-Z]", password))
        and bool(re.search(r"\d", password))
    )


def sip_login_problem(login):
    """Why Mango would refuse this SIP login with result 3121, in English, or
    ``None`` when it accepts it.

    The rule (reference §4.4): at least 4 characters; starts with a Latin letter,
    or starts with a digit but contains a letter, or is all digits starting with
    ``000``."""
    if (
        not isinstance(login, str)
        or len(login) < 4
        or not re.fullmatch(r"[A-Za-z0-9._-]+", login)
    ):
        return "SIP login needs 4+ Latin letters, digits, '_', '.' or '-'"
    if login[0].isascii() and login[0].isalpha():
        return None
    if login[0].isdigit():
        if any(c.isascii() and c.isalpha() for c in login):
            return None
        if login.isdigit() and login.startswith("000"):
            return None
    return (
        "SIP login must start with a letter, contain a letter, "
        "or be digits starting with 000"
    )


def is_valid_sip_login(login):
    """Mango result 3121 (see :func:`sip_login_problem`): whether Mango accepts it."""
    return sip_login_problem(login) is None
