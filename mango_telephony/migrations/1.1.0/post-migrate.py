"""The connection test's outcome becomes a code, worded in each reader's language.

Up to 18.0.1.0.0, ``mango.account.connection_message`` stored the sentence itself,
in the language of whoever pressed "Test connection". It is now computed from
``connection_result`` (a code) and ``connection_result_params``; the old column
is read here once, then dropped:

- a successful test becomes ``ok`` (that sentence has no details to lose);
- a failure whose sentence names Mango's answer by its language-neutral marker,
  3102 (signature), 3105 (key) or HTTP 401 (lockout), becomes that code;
- a test outdated by a change of address, key or salt (state "unknown") says
  nothing, as such an account does now;
- any other failure keeps its sentence as it was worded (``recorded_text``) until
  the next test replaces it: its details (address, system error) are not
  recoverable from a translated sentence.
"""

import json
import logging

_logger = logging.getLogger(__name__)

MARKERS = (
    ("(3102)", "bad_signature"),
    ("(3105)", "unknown_key"),
    ("HTTP 401", "locked_out"),
)


def outcome_of(state, message):
    """``(code, params)`` of a stored account row, or ``(None, None)`` when there
    is nothing to say (never tested, or settings changed since)."""
    if state == "ok":
        return "ok", {}
    if state != "failed" or not message:
        return None, None
    for marker, code in MARKERS:
        if marker in message:
            return code, {}
    return "recorded_text", {"text": message}


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        SELECT 1 FROM information_schema.columns
         WHERE table_name = 'mango_account' AND column_name = 'connection_message'
        """
    )
    if not cr.fetchone():
        return
    cr.execute(
        "SELECT id, connection_state, connection_message FROM mango_account "
        "WHERE connection_result IS NULL"
    )
    rows = cr.fetchall()
    for account_id, state, message in rows:
        code, params = outcome_of(state, message)
        if code:
            cr.execute(
                "UPDATE mango_account SET connection_result = %s, "
                "connection_result_params = %s WHERE id = %s",
                (code, json.dumps(params), account_id),
            )
    cr.execute("ALTER TABLE mango_account DROP COLUMN connection_message")
    _logger.info("mango_telephony: %s connection outcomes kept as codes", len(rows))
