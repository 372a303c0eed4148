"""Webhook health: which account a request is for, and how delivery is going.

Mango's requests are matched to an account by their key (in constant time), and
what the boundary refused is remembered for the administrator's "Event delivery"
panel: the last refusal and its reason per account (throttled, written in its own
short transaction, so a flood of forged requests cannot become a flood of
writes), the last refusal whose key matched no account, the events waiting or
failed, and the correctly signed bodies kept as refused events
(``mango.refused.event``).
"""

import hmac
import logging
import threading
import time

from odoo import _, api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

REFUSAL_REASONS = [
    ("bad_signature", "Bad signature"),
    ("unknown_key", "Unknown API key"),
    ("address_not_allowed", "Address not allowed"),
    ("malformed", "Malformed request"),
    ("invalid_event", "Invalid event (see Refused events)"),
]
# A refused request costs at most one short database write per account and reason
# in this interval (per worker process): a flood of forged requests must not turn
# into a flood of writes.
REFUSAL_WRITE_INTERVAL = 10.0
UNATTRIBUTED_PARAM = "mango_telephony.webhook_last_unattributed_refusal"


class RefusalThrottle:
    """Per-process memory of refusals: which ones may be written now, and how many
    were swallowed since the last write (so the count shown stays true)."""

    def __init__(self, interval=REFUSAL_WRITE_INTERVAL):
        self.interval = interval
        self._lock = threading.Lock()
        self._last = {}
        self._pending = {}

    def admit(self, key):
        """:return: 0 when this refusal must not be written, else how many refusals
        (this one included) the write accounts for."""
        now = time.monotonic()
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return 0
            self._last[key] = now
            return self._pending.pop(key)

    def clear(self):
        with self._lock:
            self._last.clear()
            self._pending.clear()


refusal_throttle = RefusalThrottle()


class MangoAccount(models.Model):
    _inherit = "mango.account"

    last_event_at = fields.Datetime(
        string="Last event received",
        compute="_compute_last_event_at",
        help="When Mango's last correctly signed request arrived.",
    )
    last_refused_at = fields.Datetime(
        string="Last refused request", readonly=True, copy=False
    )
    last_refused_reason = fields.Selection(
        REFUSAL_REASONS, string="Refused because", readonly=True, copy=False
    )
    last_refused_address = fields.Char(
        string="Refused request from", readonly=True, copy=False
    )
    refused_count = fields.Integer(
        string="Refused requests",
        readonly=True,
        copy=False,
        help="Requests refused for this account since it was created.",
    )
    unattributed_refused_at = fields.Datetime(
        string="Last refused request without a known key",
        compute="_compute_unattributed_refusal",
        help="Requests whose key matches no account (or that carry no key) cannot "
        "be told apart by account; this is the latest for the whole database.",
    )
    unattributed_refused_reason = fields.Selection(
        REFUSAL_REASONS,
        string="Refused because (no known key)",
        compute="_compute_unattributed_refusal",
    )
    unattributed_refused_address = fields.Char(
        string="Sent from (no known key)", compute="_compute_unattributed_refusal"
    )
    event_pending_count = fields.Integer(
        string="Events waiting", compute="_compute_event_counts"
    )
    event_failed_count = fields.Integer(
        string="Failed events", compute="_compute_event_counts"
    )
    refused_event_count = fields.Integer(
        string="Refused events",
        compute="_compute_refused_event_count",
        help="Correctly signed requests whose body was not a Mango event, kept "
        "(the latest thousand) so that nothing Mango sent is lost.",
    )

    def _compute_last_event_at(self):
        received = {}
        if self.ids:
            self.env.cr.execute(
                SQL(
                    """
                    SELECT account_id, max(received_at) FROM mango_event
                     WHERE account_id IN %s GROUP BY account_id
                    """,
                    tuple(self.ids),
                )
            )
            received = dict(self.env.cr.fetchall())
        for account in self:
            account.last_event_at = received.get(account.id, False)

    def _compute_unattributed_refusal(self):
        value = self.env["ir.config_parameter"].sudo().get_param(UNATTRIBUTED_PARAM)
        at, reason, address = ((value or "").split("|", 2) + ["", "", ""])[:3]
        reason = reason if reason in dict(REFUSAL_REASONS) else False
        for account in self:
            account.unattributed_refused_at = (
                fields.Datetime.to_datetime(at) if at else False
            )
            account.unattributed_refused_reason = reason
            account.unattributed_refused_address = address or False

    def _compute_event_counts(self):
        counts = {}
        if self.ids:
            groups = (
                self.env["mango.event"]
                .sudo()
                ._read_group(
                    [
                        ("account_id", "in", self.ids),
                        ("state", "in", ("pending", "failed")),
                    ],
                    ["account_id", "state"],
                    ["__count"],
                )
            )
            counts = {(account.id, state): n for account, state, n in groups}
        for account in self:
            account.event_pending_count = counts.get((account.id, "pending"), 0)
            account.event_failed_count = counts.get((account.id, "failed"), 0)

    # ------------------------------------------------------------------ webhook

    @api.model
    def _mango_webhook_accounts(self):
        """(id, key, salt, address filter mode, allowed addresses) of every active
        account with credentials, in one query."""
        self.env.cr.execute(
            SQL(
                """
                SELECT id, api_key, api_salt, ip_filter_mode, allowed_ips
                  FROM mango_account
                 WHERE active AND api_key IS NOT NULL AND api_salt IS NOT NULL
                 ORDER BY id
                """
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _mango_match_webhook_key(self, api_key):
        """The account whose key equals ``api_key``.

        Every active key is compared in constant time and the loop never stops
        early, so the answer time does not tell how much of a key was right nor
        which account matched.

        :return: ``(account, salt)``: the account is a sudoed record holding, in
            cache only, what the address check needs; ``(None, None)`` if unknown
        """
        received = (api_key or "").encode()
        found = None
        for row in self._mango_webhook_accounts():
            if hmac.compare_digest(received, row[1].encode()):
                found = row
        if found is None:
            return None, None
        account_id, _key, salt, mode, allowed_ips = found
        # A pseudo-record (origin = the account) so the settings' own address
        # check runs without reading the account again on every event.
        account = self.sudo().browse(account_id)
        checker = account.new(
            {"ip_filter_mode": mode, "allowed_ips": allowed_ips}, origin=account
        )
        return checker, salt

    @api.model
    def _mango_record_refusal(self, reason, address, account_id=None, detail=None):
        """Note a refused webhook request for the settings page and the log.

        Throttled per process and written in its own short transaction: the
        request's transaction is rolled back by the refusal, and a flood of forged
        requests costs at most one write per interval.

        :param str detail: what was wrong, for the log (safe text, no secret)
        """
        key = (self.env.cr.dbname, account_id, reason)
        count = refusal_throttle.admit(key)
        if not count:
            return False
        _logger.warning(
            "Mango webhook refused (%s%s) from %s for account %s; %d refusal(s) "
            "since the last report",
            reason,
            f": {detail}" if detail else "",
            address,
            account_id or "-",
            count,
        )
        now = fields.Datetime.now()
        with self.env.registry.cursor() as cr:
            if account_id:
                cr.execute(
                    SQL(
                        """
                        UPDATE mango_account
                           SET last_refused_at = %(now)s,
                               last_refused_reason = %(reason)s,
                               last_refused_address = %(address)s,
                               refused_count = COALESCE(refused_count, 0) + %(count)s
                         WHERE id = %(id)s
                        """,
                        now=now,
                        reason=reason,
                        address=(address or "")[:64],
                        count=count,
                        id=account_id,
                    )
                )
            else:
                env = self.env(cr=cr, su=True)
                env["ir.config_parameter"].set_param(
                    UNATTRIBUTED_PARAM,
                    f"{fields.Datetime.to_string(now)}|{reason}|{(address or '')[:64]}",
                )
        return True

    def action_view_events(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Raw events"),
            "res_model": "mango.event",
            "view_mode": "list,form",
            "domain": [("account_id", "=", self.id)],
        }

    def _compute_refused_event_count(self):
        counts = {}
        if self.ids:
            groups = (
                self.env["mango.refused.event"]
                .sudo()
                ._read_group(
                    [("account_id", "in", self.ids)], ["account_id"], ["__count"]
                )
            )
            counts = {account.id: count for account, count in groups}
        for account in self:
            account.refused_event_count = counts.get(account.id, 0)

    def action_view_refused_events(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_telephony.mango_refused_event_action"
        )
        action["domain"] = [("account_id", "in", self.ids)]
        action["name"] = _("Refused events")
        return action
