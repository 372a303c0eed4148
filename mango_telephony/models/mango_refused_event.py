"""Correctly signed webhook requests the boundary refused, kept for the admin.

A request signed with the account's key and salt comes from Mango or from
someone holding the key. When its body is not a Mango event of its path (see
``mango_office.event_validation``) it is answered with a 4xx and never folded,
but it is not silently lost: it is kept here, made safe to store (NUL,
surrogates and control characters escaped, cut at :data:`PAYLOAD_LIMIT`), with
the reason, the field, the route and the sender's address.

Retention is a cap, enforced on every insert: at most :data:`KEEP_PER_ACCOUNT`
refused events per account, the oldest dropped first. Whoever holds the key
can therefore never use up more than about ``KEEP_PER_ACCOUNT × PAYLOAD_LIMIT``
characters (a few megabytes) however long they keep sending; a cap, rather
than a time-based purge, bounds the disk during the flood itself.
"""

import logging

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.sql import create_index, index_exists

from mango_office import safe_text

_logger = logging.getLogger(__name__)

KEEP_PER_ACCOUNT = 1000
PAYLOAD_LIMIT = 4096
PATH_LIMIT = 200
FIELD_LIMIT = 120

# The boundary's reason codes (mango_office.event_validation.REASONS), and the
# form-level one of the controller; the labels are what administrators read.
REFUSED_EVENT_REASONS = [
    ("not_json", "Not JSON"),
    ("not_object", "Not a JSON object"),
    ("too_large", "Too large"),
    ("too_deep", "Nested too deep"),
    ("duplicate_key", "Duplicate key in the JSON"),
    ("duplicate_form_field", "Duplicate form field"),
    ("unknown_path", "Unknown path"),
    ("missing_field", "Required field missing"),
    ("wrong_type", "Wrong type"),
    ("out_of_range", "Value out of range"),
    ("bad_characters", "Forbidden characters"),
    ("too_long", "Text too long"),
    ("unknown_value", "Unknown value"),
]


class MangoRefusedEvent(models.Model):
    _name = "mango.refused.event"
    _description = "Refused Mango event"
    _order = "id desc"

    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="cascade", readonly=True
    )
    company_id = fields.Many2one(related="account_id.company_id")
    received_at = fields.Datetime(
        required=True, default=fields.Datetime.now, readonly=True
    )
    path = fields.Char(
        string="Route", readonly=True, help="The path below /mango/ it was sent to."
    )
    reason = fields.Selection(REFUSED_EVENT_REASONS, required=True, readonly=True)
    field = fields.Char(
        readonly=True, help="The field of the body the reason is about, if any."
    )
    remote_addr = fields.Char(string="Source address", readonly=True)
    payload = fields.Text(
        string="Body as received",
        readonly=True,
        help="The json form field, with NUL, lone surrogates and control characters "
        "written as \\uXXXX escapes, cut after a few thousand characters.",
    )
    payload_size = fields.Integer(
        string="Size (characters)",
        readonly=True,
        help="The length of the json form field as received.",
    )
    payload_truncated = fields.Boolean(string="Cut", readonly=True)

    def init(self):
        # The cap's delete walks one account's newest rows.
        name = "mango_refused_event_account_id_id_idx"
        if not index_exists(self.env.cr, name):
            create_index(self.env.cr, name, self._table, ["account_id", "id"])

    @api.depends("path", "reason")
    def _compute_display_name(self):
        labels = dict(self._fields["reason"]._description_selection(self.env))
        for record in self:
            record.display_name = f"{record.path or '?'}: {labels.get(record.reason)}"

    @api.model
    def _mango_keep(self, account, path, body, reason, field, remote_addr):
        """Keep one refused request (any text, however hostile) and drop the
        account's oldest beyond the cap.

        :param account: the ``mango.account`` the request was signed for
        :param str reason: a key of :data:`REFUSED_EVENT_REASONS`
        :return: the new record
        """
        body = body if isinstance(body, str) else ""
        record = self.sudo().create(
            {
                "account_id": account.id,
                "path": safe_text.storable(path, PATH_LIMIT, multiline=False),
                "reason": reason,
                "field": safe_text.storable(field, FIELD_LIMIT, multiline=False)
                or False,
                "remote_addr": safe_text.storable(remote_addr, 64, multiline=False),
                "payload": safe_text.storable(body, PAYLOAD_LIMIT),
                "payload_size": len(body),
                "payload_truncated": len(body) > PAYLOAD_LIMIT,
            }
        )
        self.env.cr.execute(
            SQL(
                """
                DELETE FROM mango_refused_event
                 WHERE account_id = %(account)s
                   AND id <= (SELECT id FROM mango_refused_event
                               WHERE account_id = %(account)s
                               ORDER BY id DESC OFFSET %(keep)s LIMIT 1)
                """,
                account=account.id,
                keep=KEEP_PER_ACCOUNT,
            )
        )
        return record
