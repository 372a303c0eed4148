"""The user's own extension: the field of their preferences, and who may set it.

``mango_extension`` is the user's row of the extension list of their company's
Mango account (mango_account_user.py), not a free text: calls, cards and
click-to-call only ever read that list. Telephony administrators set anyone's
extension. A user may take one for themself only when nobody in Odoo holds it and
the PBX has it (``config/users/request``) without naming a colleague as its
employee; otherwise typing a number would ring, and show the calls of, someone
else's phone.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import escape_psql

from mango_office import errors as mango_errors

from .mango_account_user import EXTENSION_PATTERN, clean_extension

_logger = logging.getLogger(__name__)

ADMIN_GROUP = "mango_telephony.group_mango_admin"


class ResUsers(models.Model):
    _inherit = "res.users"

    mango_extension = fields.Char(
        string="Phone extension",
        compute="_compute_mango_extension",
        inverse="_inverse_mango_extension",
        search="_search_mango_extension",
        help="Your internal number on the Mango PBX: calls answered on it are "
        "yours, and click-to-call rings it first. You may choose an extension the "
        "PBX has and nobody else uses; a telephony administrator can assign any.",
    )
    mango_account_user_ids = fields.One2many(
        "mango.account.user", "user_id", string="Extensions per account"
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + ["mango_extension"]

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + ["mango_extension"]

    # ------------------------------------------------------------------
    # Compute, inverse, search
    # ------------------------------------------------------------------

    def _mango_extension_account(self):
        """The account whose extension this user's preference shows: the one of
        the company they work in now (or of their main company).

        :rtype: mango.account, sudoed (empty when the company has none)
        """
        self.ensure_one()
        return (
            self.env["mango.account"]
            .sudo()
            ._mango_account_for_company(self._mango_extension_company())
        )

    def _mango_extension_company(self):
        """The company they work in now, or their main company."""
        self.ensure_one()
        return (
            self.env.company
            if self.env.company in self.sudo().company_ids
            else self.sudo().company_id
        )

    @api.depends(
        "mango_account_user_ids.extension", "mango_account_user_ids.account_id"
    )
    @api.depends_context("company")
    def _compute_mango_extension(self):
        # one account search per company, not per user: reading the field of
        # 100,000 users (the directory sync) would otherwise search 100,000 times
        by_company = {}
        accounts = {}
        for user in self:
            company = user._mango_extension_company()
            if company not in by_company:
                by_company[company] = (
                    self.env["mango.account"].sudo()._mango_account_for_company(company)
                )
            accounts[user] = by_company[company]
        mappings = (
            self.env["mango.account.user"]
            .sudo()
            .search(
                [
                    ("user_id", "in", [u.id for u in self if isinstance(u.id, int)]),
                    ("account_id", "in", [a.id for a in accounts.values() if a]),
                ]
            )
        )
        extensions = {(m.user_id.id, m.account_id.id): m.extension for m in mappings}
        for user, account in accounts.items():
            user.mango_extension = extensions.get((user.id, account.id), False)

    def _search_mango_extension(self, operator, value):
        if operator in ("=", "!=") and not value:
            exists = "!=" if operator == "=" else "="
            return [("mango_account_user_ids", exists, False)]
        return [("mango_account_user_ids.extension", operator, value)]

    def _inverse_mango_extension(self):
        actor = self.env.user
        administrator = actor._is_superuser() or actor.has_group(ADMIN_GROUP)
        if not administrator and self != actor:
            raise AccessError(
                self.env._(
                    "Only telephony administrators give extensions to other users."
                )
            )
        Mapping = self.env["mango.account.user"].sudo()
        for user in self:
            extension = clean_extension(user.mango_extension)
            account = user._mango_extension_account()
            if not account:
                if extension:
                    raise UserError(
                        self.env._(
                            "%(company)s has no Mango account yet: an extension is "
                            "a number of its Mango PBX, so an administrator sets the "
                            "account up first (Settings → IP telephony).",
                            company=user.sudo().company_id.display_name,
                        )
                    )
                continue
            current = Mapping.search(
                [("account_id", "=", account.id), ("user_id", "=", user.id)]
            )
            if (current.extension or None) == extension:
                continue
            if not extension:
                current.unlink()
                continue
            if not EXTENSION_PATTERN.fullmatch(extension):
                raise ValidationError(
                    self.env._(
                        "“%(extension)s” is not an extension: an extension is the "
                        "employee's internal number on the PBX, digits only.",
                        extension=extension,
                    )
                )
            Mapping._mango_check_free([(account.id, extension, user.id, *current.ids)])
            if not administrator:
                user._mango_check_extension_on_pbx(account, extension)
            if current:
                current.write({"extension": extension})
            else:
                Mapping.create(
                    {
                        "account_id": account.id,
                        "user_id": user.id,
                        "extension": extension,
                    }
                )
            _logger.info(
                "User %s now answers extension %s of Mango account %s (%s)",
                user.id,
                extension,
                account.id,
                f"set by administrator {actor.id}"
                if administrator
                else "chosen by the user, checked with the PBX",
            )

    # ------------------------------------------------------------------
    # Self-service check with the PBX
    # ------------------------------------------------------------------

    def _mango_check_extension_on_pbx(self, account, extension):
        """Refuse an extension the PBX does not have, or has for a colleague.

        The PBX's employee at ``extension`` is this user when their e-mail or LK
        login is this user's login (logins are not self-editable, e-mails are);
        it is a colleague's when it is the login or e-mail of another Odoo user.
        An employee the PBX knows by neither may be taken.

        :raise ValidationError: the extension is missing or a colleague's
        :raise UserError: the PBX cannot be asked
        """
        self.ensure_one()
        try:
            employees = account._mango_client().users(
                extension=extension, ext_fields=("general.user_id", "general.login")
            )
        except (mango_errors.MangoError, UserError) as error:
            reason = (
                account._mango_error_message(error)
                if isinstance(error, mango_errors.MangoError)
                else error.args[0]
            )
            _logger.info(
                "Extension %s of Mango account %s could not be checked for user %s: %s",
                extension,
                account.id,
                self.id,
                type(error).__name__,
            )
            raise UserError(
                self.env._(
                    "Extension %(extension)s cannot be checked with the PBX of "
                    "%(account)s right now. %(reason)s Try again later, or ask a "
                    "telephony administrator to assign it.",
                    extension=extension,
                    account=account.display_name,
                    reason=reason,
                )
            ) from error
        employees = [
            employee
            for employee in employees
            if isinstance(employee, dict)
            and isinstance(employee.get("telephony"), dict)
            and clean_extension(employee["telephony"].get("extension")) == extension
        ]
        if not employees:
            raise ValidationError(
                self.env._(
                    "Extension %(extension)s does not exist on the PBX of "
                    "%(account)s: check the number (Mango cabinet → Employees), or "
                    "ask a telephony administrator.",
                    extension=extension,
                    account=account.display_name,
                )
            )
        identities = set()
        for employee in employees:
            general = employee.get("general")
            general = general if isinstance(general, dict) else {}
            for key in ("email", "login"):
                value = general.get(key)
                if isinstance(value, str) and value.strip():
                    identities.add(value.strip().lower())
        if not identities or (self.login or "").strip().lower() in identities:
            return
        domain = []
        for identity in sorted(identities):
            pattern = escape_psql(identity)
            domain = [
                *(["|"] if domain else []),
                *domain,
                "|",
                ("login", "=ilike", pattern),
                ("email", "=ilike", pattern),
            ]
        colleagues = (
            self.sudo()
            .with_context(active_test=False)
            .search([("id", "!=", self.id), ("share", "=", False), *domain], limit=1)
        )
        if colleagues:
            raise ValidationError(
                self.env._(
                    "The PBX of %(account)s lists extension %(extension)s for "
                    "%(holder)s: only a telephony administrator can give it to "
                    "someone else.",
                    extension=extension,
                    account=account.display_name,
                    holder=colleagues.display_name,
                )
            )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if isinstance(vals.get("mango_extension"), str):
                vals["mango_extension"] = vals["mango_extension"].strip() or False
        return super().create(vals_list)

    def write(self, vals):
        if isinstance(vals.get("mango_extension"), str):
            vals["mango_extension"] = vals["mango_extension"].strip() or False
        return super().write(vals)
