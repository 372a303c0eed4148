"""Per-user telephony preferences and the click-to-call entry point."""

import logging
import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from mango_office import errors as mango_errors
from mango_office import phones

_logger = logging.getLogger(__name__)

CALL_MODES = [
    ("mango", "Through Mango: my phone rings first"),
    ("softphone", "My softphone (PhonerLite or another)"),
]
SOFTPHONE_SCHEMES = [
    ("sip", "sip:"),
    ("tel", "tel:"),
    ("callto", "callto:"),
]
# Models whose records are the "origin" of a click even though the number is not
# theirs: the contact they point to gets the call on its chatter.
ORIGIN_PARTNER_FIELDS = ("partner_id", "work_contact_id", "commercial_partner_id")
_SELF_FIELDS = [
    "mango_call_mode",
    "mango_softphone_scheme",
    "mango_card_open_form",
    "mango_card_keep_open",
    "mango_desktop_notify",
    "mango_line_id",
]


class ResUsers(models.Model):
    _inherit = "res.users"

    mango_call_mode = fields.Selection(
        CALL_MODES,
        string="Place calls",
        required=True,
        default="mango",
        help="Through Mango: Mango rings your phone first and connects you to the "
        "number once you answer. Softphone: the call button opens a sip:/tel:/"
        "callto: link, which your softphone dials.",
    )
    mango_softphone_scheme = fields.Selection(
        SOFTPHONE_SCHEMES,
        string="Softphone link",
        required=True,
        default="sip",
        help="The kind of link your softphone is registered for: PhonerLite "
        "handles sip:, tel: and callto:.",
    )
    mango_card_open_form = fields.Boolean(
        string="Open the customer on answer",
        help="When you answer a call from a known customer, their form opens by "
        "itself.",
    )
    mango_card_keep_open = fields.Boolean(
        string="Keep the call card after the call",
        help="The incoming-call card closes by itself a few seconds after the call "
        "ends. Tick to keep it until you close it, e.g. to open the customer or "
        "create a lead once you have hung up.",
    )
    mango_desktop_notify = fields.Boolean(
        string="Desktop notification for calls",
        default=True,
        help="Also show incoming calls as a desktop notification while Odoo's tab "
        "is in the background (your browser asks for permission once).",
    )
    mango_line_id = fields.Many2one(
        "mango.line",
        string="My outgoing line",
        ondelete="set null",
        domain="[('usable_outgoing', '=', True)]",
        help="The number people you call see. Empty: the account's default line.",
    )

    @property
    def SELF_READABLE_FIELDS(self):
        return super().SELF_READABLE_FIELDS + _SELF_FIELDS

    @api.constrains("mango_line_id")
    def _check_mango_line(self):
        # Users set their own line (a self-writeable field): one Mango refuses
        # with 3124 would count towards the lockout of the whole company's API.
        for user in self.sudo():
            line = user.mango_line_id
            if not line:
                continue
            if line.company_id not in user.company_ids:
                raise ValidationError(
                    self.env._(
                        "The line %(line)s belongs to the Mango account of another "
                        "company.",
                        line=line.display_name,
                    )
                )
            if not line.usable_outgoing:
                raise ValidationError(
                    self.env._(
                        "The line %(line)s cannot place outgoing calls: choose "
                        "another, or none for the company's default line.",
                        line=line.display_name,
                    )
                )

    @property
    def SELF_WRITEABLE_FIELDS(self):
        return super().SELF_WRITEABLE_FIELDS + _SELF_FIELDS

    # ------------------------------------------------------------------
    # Web client
    # ------------------------------------------------------------------

    def _mango_session_info(self):
        """What the web client needs to draw call buttons and cards."""
        self.ensure_one()
        user = self.sudo()
        is_user = self.has_group("mango_telephony.group_mango_user")
        return {
            "is_user": is_user,
            "is_supervisor": self.has_group("mango_telephony.group_mango_supervisor"),
            "is_admin": self.has_group("mango_telephony.group_mango_admin"),
            "mode": user.mango_call_mode or "mango",
            "scheme": user.mango_softphone_scheme or "sip",
            "open_form_on_answer": bool(user.mango_card_open_form),
            "keep_ended_cards": bool(user.mango_card_keep_open),
            "desktop_notify": bool(user.mango_desktop_notify),
        }

    @api.model
    def mango_click_to_call(self, number, res_model=False, res_id=False):
        """Call ``number`` for the current user, from the record it was clicked on.

        The extension is never taken from the caller: it is the current user's
        (the account's own list first, then the user's preference), so nobody can
        ring someone else's phone.

        :param str number: the number as shown in the field
        :param str res_model: model of the record the button belongs to
        :param int res_id: id of that record
        :return: ``{"status": "calling"|"softphone"|"error", "title", "message",
            "url" (softphone), "number"}``; errors are answers, not exceptions, so the
            browser can show them as a notification
        """
        user = self.env.user
        if user.share:
            raise AccessError(self.env._("Only employees can place calls."))
        company = self.env.company
        region = (company.country_id.code or "RU").upper()
        number = (number or "").strip() if isinstance(number, str) else ""
        target = phones.to_mango(number, region) if number else None
        if not target:
            return self._mango_call_answer(
                "error",
                self.env._(
                    "“%(number)s” is not a phone number that can be dialled: check "
                    "it (with the country code for foreign numbers).",
                    number=number,
                ),
                number=number,
            )
        if user.sudo().mango_call_mode == "softphone":
            scheme = user.sudo().mango_softphone_scheme or "sip"
            link = target if target.startswith("sip") else f"{scheme}:{target}"
            return self._mango_call_answer(
                "softphone",
                self.env._(
                    "Opening your softphone for %(number)s…",
                    number=self._mango_show(target),
                ),
                number=target,
                url=link,
            )
        if not user.has_group("mango_telephony.group_mango_user"):
            return self._mango_call_answer(
                "error",
                self.env._(
                    "You are not a telephony user: ask your administrator for the "
                    "“Telephony user” role."
                ),
                number=target,
            )
        account = self.env["mango.account"].sudo()._mango_account_for_company(company)
        if not account:
            return self._mango_call_answer(
                "error",
                self.env._(
                    "%(company)s has no Mango account yet: an administrator sets it "
                    "up in Settings → IP telephony.",
                    company=company.display_name,
                ),
                number=target,
            )
        extension = account._mango_extension_of_user(user)
        if not extension:
            return self._mango_call_answer(
                "error",
                self.env._(
                    "You have no phone extension on %(account)s: set yours in My "
                    "Preferences → Telephony, or ask an administrator.",
                    account=account.display_name,
                ),
                number=target,
            )
        line = user.sudo().mango_line_id
        if line and (
            line.account_id != account or not line.active or not line.usable_outgoing
        ):
            line = account.default_line_id
        line_number = (line or account.default_line_id)._mango_line_number() or None
        command_id = f"odoo-c2c-{uuid.uuid4().hex}"
        click = (
            self.env["mango.click.to.call"]
            .sudo()
            .create(
                {
                    "command_id": command_id,
                    "user_id": user.id,
                    "account_id": account.id,
                    "number": number,
                    "number_mango": target,
                    "extension": extension,
                    "line_number": line_number or False,
                    **self._mango_click_origin(res_model, res_id),
                }
            )
        )
        try:
            account._mango_client().callback(
                extension, target, line_number=line_number, command_id=command_id
            )
        except (mango_errors.MangoError, UserError) as error:
            if isinstance(error, mango_errors.MangoError):
                message = account._mango_error_message(error)
                code = error.code or error.http_status or 0
            else:
                message, code = str(error.args[0]) if error.args else str(error), 0
            _logger.info(
                "Click-to-call by user %s refused: %s (code %s)",
                user.id,
                type(error).__name__,
                code,
            )
            click.mango_command_id._mango_refused(code, message)
            return self._mango_call_answer(
                "error",
                self.env._(
                    "The call to %(number)s could not be placed. %(reason)s",
                    number=self._mango_show(target),
                    reason=message,
                ),
                number=target,
            )
        # The call may already have been folded by another worker before this
        # transaction commits; link it once the click is visible to everybody.
        self.env.cr.postcommit.add(click.mango_command_id._mango_link_after_commit)
        return self._mango_call_answer(
            "calling",
            self.env._(
                "Calling your phone (extension %(extension)s)…, then %(number)s",
                extension=extension,
                number=self._mango_show(target),
            ),
            number=target,
            command_id=command_id,
        )

    def _mango_call_answer(self, status, message, **values):
        titles = {
            "calling": self.env._("Calling"),
            "softphone": self.env._("Softphone"),
            "error": self.env._("Cannot call"),
        }
        return {"status": status, "title": titles[status], "message": message, **values}

    @api.model
    def _mango_show(self, target):
        """A number as people read it (+7…) from Mango's form (7…)."""
        return f"+{target}" if target and target.isdigit() else target

    @api.model
    def _mango_click_origin(self, res_model, res_id):
        """The record a call button was clicked on, and its contact / lead, when
        the current user may read them."""
        if not (
            isinstance(res_model, str)
            and res_model in self.env
            and isinstance(res_id, int)
            and res_id > 0
        ):
            return {}
        record = self.env[res_model].browse(res_id).exists()
        if not record or not record.has_access("read"):
            return {}
        values = {"res_model": res_model, "res_id": res_id}
        partner = self.env["res.partner"]
        lead = self.env["crm.lead"]
        if res_model == "res.partner":
            partner = record
        elif res_model == "crm.lead":
            lead = record
            partner = record.partner_id
        else:
            for name in ORIGIN_PARTNER_FIELDS:
                field = record._fields.get(name)
                if (
                    field
                    and field.type == "many2one"
                    and field.comodel_name == ("res.partner")
                ):
                    partner = record[name]
                    break
        values["partner_id"] = partner.id or False
        values["lead_id"] = lead.id or False
        return values


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    def session_info(self):
        info = super().session_info()
        user = self.env.user
        if info.get("uid") and user and not user.share:
            info["mango_telephony"] = user._mango_session_info()
        return info
