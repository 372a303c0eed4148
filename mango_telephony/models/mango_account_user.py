"""Who answers which extension of a Mango account.

An extension is a phone on the PBX. Its holder in Odoo gets the incoming-call cards
and the calls it answers, and click-to-call rings it; so an extension belongs to at
most one user per account (a unique index, and a check that names the holder), and
this list is the only place calls, cards and click-to-call look users up. Users add
themselves through their preferences (``res.users.mango_extension``, checked with
the PBX); administrators edit the list directly.
"""

import logging
import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL
from odoo.tools.sql import column_exists

from ..compat.constraints import table_constraints

_logger = logging.getLogger(__name__)

# Mango extensions are digits (reference §3.1, §4.4; DOC2026 types them as
# integers, examples send strings).
EXTENSION_PATTERN = re.compile(r"\d{1,16}")


def clean_extension(extension):
    """An extension as stored and compared: a string without blanks, or None.

    Events carry extensions as strings or integers (reference §8.9).
    """
    if extension is None or extension is False or isinstance(extension, bool):
        return None
    return str(extension).strip() or None


@table_constraints
class MangoAccountUser(models.Model):
    _name = "mango.account.user"
    _description = "Mango extension of a user"
    _order = "account_id, extension"
    _rec_name = "extension"

    account_id = fields.Many2one(
        "mango.account", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    user_id = fields.Many2one(
        "res.users", required=True, ondelete="cascade", index=True
    )
    extension = fields.Char(
        required=True, help="The user's internal number on this Mango account."
    )

    # The database's own guarantee; create() and write() check first so that the
    # message names who holds the extension.
    _sql_constraints = [
        (
            "account_extension_uniq",
            "unique(account_id, extension)",
            "An extension belongs to one user per account.",
        ),
        (
            "account_user_uniq",
            "unique(account_id, user_id)",
            "A user has one extension per account.",
        ),
    ]

    def init(self):
        """Bring over the extensions users typed before this list was the only
        source (``res_users.mango_extension`` was a column of its own).

        Each distinct extension goes to its oldest claimant on the account of the
        user's company, as the old lookup decided; the rest are logged. The old
        column is renamed, not dropped, so nothing typed is lost and this runs once.
        """
        cr = self.env.cr
        if not column_exists(cr, "res_users", "mango_extension"):
            return
        cr.execute(
            SQL(
                """
                WITH typed AS (
                    SELECT u.id AS user_id, btrim(u.mango_extension) AS extension,
                           u.company_id
                      FROM res_users u
                     WHERE btrim(coalesce(u.mango_extension, '')) ~ '^[0-9]{1,16}$'
                ), candidates AS (
                    SELECT DISTINCT ON (a.id, t.extension)
                           a.id AS account_id, a.company_id, t.user_id, t.extension
                      FROM typed t
                      JOIN mango_account a ON a.company_id = t.company_id
                     WHERE NOT EXISTS (
                               SELECT 1 FROM mango_account_user m
                                WHERE m.account_id = a.id
                                  AND (m.extension = t.extension
                                       OR m.user_id = t.user_id))
                     ORDER BY a.id, t.extension, t.user_id
                )
                INSERT INTO mango_account_user
                       (account_id, company_id, user_id, extension,
                        create_uid, write_uid, create_date, write_date)
                SELECT account_id, company_id, user_id, extension,
                       %(uid)s, %(uid)s, now() at time zone 'UTC',
                       now() at time zone 'UTC'
                  FROM candidates
                ON CONFLICT DO NOTHING
                RETURNING user_id
                """,
                uid=self.env.uid,
            )
        )
        moved = {user_id for (user_id,) in cr.fetchall()}
        cr.execute(
            """SELECT id, mango_extension FROM res_users
                WHERE btrim(coalesce(mango_extension, '')) != ''"""
        )
        left = [(uid, ext) for uid, ext in cr.fetchall() if uid not in moved]
        if left:
            _logger.warning(
                "Phone extensions not moved to the accounts' extension lists (taken, "
                "not digits or no Mango account for the user's company; kept in "
                "res_users.mango_extension_before_lists): %s",
                ", ".join(f"user {uid}: {ext!r}" for uid, ext in left),
            )
        cr.execute(
            "ALTER TABLE res_users RENAME COLUMN mango_extension "
            "TO mango_extension_before_lists"
        )
        _logger.info(
            "%s phone extension(s) moved to the accounts' extension lists", len(moved)
        )

    @api.constrains("extension")
    def _check_extension_digits(self):
        for mapping in self:
            if not EXTENSION_PATTERN.fullmatch(mapping.extension or ""):
                raise ValidationError(
                    self.env._(
                        "“%(extension)s” is not an extension: an extension is the "
                        "employee's internal number on the PBX, digits only.",
                        extension=mapping.extension,
                    )
                )

    @api.constrains("user_id", "account_id")
    def _check_user_company(self):
        for mapping in self.sudo():
            if mapping.account_id.company_id not in mapping.user_id.company_ids:
                raise ValidationError(
                    self.env._(
                        "%(user)s does not work for %(company)s, so they cannot "
                        "answer an extension of its Mango account.",
                        user=mapping.user_id.display_name,
                        company=mapping.account_id.company_id.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        # Rights first: the checks below would tell anybody who holds what.
        self.browse().check_access("create")
        for vals in vals_list:
            if isinstance(vals.get("extension"), str | int):
                vals["extension"] = clean_extension(vals["extension"]) or False
        self._mango_check_free(
            [
                (vals.get("account_id"), vals.get("extension"), vals.get("user_id"))
                for vals in vals_list
            ]
        )
        return super().create(vals_list)

    def write(self, vals):
        self.check_access("write")
        if isinstance(vals.get("extension"), str | int):
            vals["extension"] = clean_extension(vals["extension"]) or False
        if {"account_id", "extension", "user_id"} & set(vals):
            self._mango_check_free(
                [
                    (
                        vals.get("account_id", mapping.account_id.id),
                        vals.get("extension", mapping.extension),
                        vals.get("user_id", mapping.user_id.id),
                        mapping.id,
                    )
                    for mapping in self
                ]
            )
        return super().write(vals)

    @api.model
    def _mango_check_free(self, wanted):
        """Refuse, naming the holder, an extension or a user already taken on
        the account.

        :param list wanted: ``(account id, extension, user id[, own mapping id])``
            after the change
        :raise ValidationError: on the first conflict
        """
        Mapping = self.sudo().with_context(active_test=False)
        seen_extensions, seen_users = {}, {}
        for account_id, extension, user_id, *own in wanted:
            if not account_id:
                continue
            extension = clean_extension(extension)
            if extension:
                holder = (
                    seen_extensions.get((account_id, extension))
                    or Mapping.search(
                        [
                            ("account_id", "=", account_id),
                            ("extension", "=", extension),
                            ("id", "not in", own),
                        ],
                        limit=1,
                    ).user_id
                )
                if holder and holder.id != user_id:
                    raise ValidationError(
                        self.env._(
                            "Extension %(extension)s of %(account)s already belongs "
                            "to %(holder)s: an extension rings one person's phone. "
                            "Free it there first.",
                            extension=extension,
                            account=Mapping.account_id.browse(account_id).display_name,
                            holder=holder.display_name,
                        )
                    )
                seen_extensions[(account_id, extension)] = Mapping.user_id.browse(
                    user_id
                )
            if user_id:
                other = (
                    seen_users.get((account_id, user_id))
                    or Mapping.search(
                        [
                            ("account_id", "=", account_id),
                            ("user_id", "=", user_id),
                            ("id", "not in", own),
                        ],
                        limit=1,
                    ).extension
                )
                if other and other != extension:
                    raise ValidationError(
                        self.env._(
                            "%(user)s already answers extension %(other)s of "
                            "%(account)s: a user has one extension per account.",
                            user=Mapping.user_id.browse(user_id).display_name,
                            other=other,
                            account=Mapping.account_id.browse(account_id).display_name,
                        )
                    )
                seen_users[(account_id, user_id)] = extension


class MangoAccount(models.Model):
    _inherit = "mango.account"

    account_user_ids = fields.One2many(
        "mango.account.user", "account_id", string="Extensions"
    )

    def _mango_user_for_extension(self, extension):
        """The Odoo user behind a PBX extension of this account.

        :rtype: res.users (empty when nobody has the extension)
        """
        self.ensure_one()
        users = self._mango_users_for_extensions([extension])
        return users.get(clean_extension(extension)) or self.env["res.users"]

    def _mango_users_for_extensions(self, extensions):
        """The holders of ``extensions`` on this account, from its extension list
        only (one query whatever their number). A user who no longer works for
        the account's company holds nothing here.

        :return: ``{extension: res.users}`` for the extensions someone holds
        """
        self.ensure_one()
        wanted = {e for e in map(clean_extension, extensions) if e}
        if not wanted:
            return {}
        mappings = (
            self.env["mango.account.user"]
            .sudo()
            .search([("account_id", "=", self.id), ("extension", "in", list(wanted))])
        )
        return {
            m.extension: m.user_id
            for m in mappings
            if self.company_id in m.user_id.company_ids
        }

    def _mango_extension_of_user(self, user):
        """The extension ``user`` answers on this account's PBX, or False."""
        self.ensure_one()
        if not user:
            return False
        mapping = (
            self.env["mango.account.user"]
            .sudo()
            .search([("account_id", "=", self.id), ("user_id", "=", user.id)], limit=1)
        )
        if not mapping or self.company_id not in mapping.user_id.company_ids:
            return False
        return mapping.extension
