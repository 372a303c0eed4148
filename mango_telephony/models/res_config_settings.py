"""The "IP telephony" settings page: the current company's Mango account.

Every setting is a field of the account (related, or an inverse writing into it),
so the settings page and the account form can never disagree; the event
delivery panel shows the account's webhook health.
"""

from odoo import _, api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    # The settings show the current company's account; its fields are related so
    # saving the settings writes straight into the account.
    mango_account_id = fields.Many2one(
        "mango.account",
        string="Mango account",
        compute="_compute_mango_account_id",
    )
    mango_api_base_url = fields.Char(
        related="mango_account_id.api_base_url", readonly=False
    )
    # Not related fields: a related field would keep the typed secret in the
    # settings record and send it back with the saved values.
    mango_api_key_input = fields.Char(
        string="API key",
        compute="_compute_mango_api_inputs",
        inverse="_inverse_mango_api_inputs",
        groups="base.group_system",
    )
    mango_api_salt_input = fields.Char(
        string="API salt",
        compute="_compute_mango_api_inputs",
        inverse="_inverse_mango_api_inputs",
        groups="base.group_system",
    )
    mango_api_key_hint = fields.Char(
        related="mango_account_id.api_key_hint", groups="base.group_system"
    )
    mango_credentials_set = fields.Boolean(related="mango_account_id.credentials_set")
    mango_verify_ssl = fields.Boolean(
        related="mango_account_id.verify_ssl", readonly=False
    )
    mango_ip_filter_mode = fields.Selection(
        related="mango_account_id.ip_filter_mode", readonly=False
    )
    mango_allowed_ips = fields.Text(
        related="mango_account_id.allowed_ips", readonly=False
    )
    mango_webhook_base_url = fields.Char(related="mango_account_id.webhook_base_url")
    mango_webhook_url_warning = fields.Char(
        related="mango_account_id.webhook_url_warning"
    )
    mango_default_line_id = fields.Many2one(
        related="mango_account_id.default_line_id", readonly=False
    )
    mango_line_count = fields.Integer(related="mango_account_id.line_count")
    mango_recording_links_allowed = fields.Boolean(
        related="mango_account_id.recording_links_allowed", readonly=False
    )
    mango_recording_storage = fields.Selection(
        related="mango_account_id.recording_storage", readonly=False
    )
    mango_connection_state = fields.Selection(
        related="mango_account_id.connection_state"
    )
    mango_connection_message = fields.Char(
        related="mango_account_id.connection_message"
    )
    # Event delivery (webhook_health.py)
    mango_last_event_at = fields.Datetime(related="mango_account_id.last_event_at")
    mango_last_refused_at = fields.Datetime(related="mango_account_id.last_refused_at")
    mango_last_refused_reason = fields.Selection(
        related="mango_account_id.last_refused_reason"
    )
    mango_last_refused_address = fields.Char(
        related="mango_account_id.last_refused_address"
    )
    mango_refused_count = fields.Integer(related="mango_account_id.refused_count")
    mango_unattributed_refused_at = fields.Datetime(
        related="mango_account_id.unattributed_refused_at"
    )
    mango_unattributed_refused_reason = fields.Selection(
        related="mango_account_id.unattributed_refused_reason"
    )
    mango_unattributed_refused_address = fields.Char(
        related="mango_account_id.unattributed_refused_address"
    )
    mango_event_failed_count = fields.Integer(
        related="mango_account_id.event_failed_count"
    )
    mango_refused_event_count = fields.Integer(
        related="mango_account_id.refused_event_count"
    )

    @api.depends("company_id")
    def _compute_mango_account_id(self):
        Account = self.env["mango.account"]
        for settings in self:
            settings.mango_account_id = Account._mango_account_for_company(
                settings.company_id
            )

    def _compute_mango_api_inputs(self):
        for settings in self:
            settings.mango_api_key_input = False
            settings.mango_api_salt_input = False

    def _inverse_mango_api_inputs(self):
        for settings in self:
            values = {
                "api_key_input": settings.mango_api_key_input,
                "api_salt_input": settings.mango_api_salt_input,
            }
            if settings.mango_account_id and any(values.values()):
                settings.mango_account_id.write(values)
        self.invalidate_recordset(["mango_api_key_input", "mango_api_salt_input"])

    def action_mango_create_account(self):
        """Create the current company's account and show its settings."""
        self.ensure_one()
        if not self.mango_account_id:
            self.env["mango.account"].create(
                {
                    "name": _(
                        "Mango Office (%(company)s)", company=self.company_id.name
                    ),
                    "company_id": self.company_id.id,
                }
            )
        return {"type": "ir.actions.client", "tag": "reload"}

    def action_mango_open_account(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "mango.account",
            "res_id": self.mango_account_id.id,
            "view_mode": "form",
            "target": "current",
        }

    def action_mango_test_connection(self):
        self.ensure_one()
        return self.mango_account_id.action_mango_test_connection()

    def action_mango_refresh_lines(self):
        self.ensure_one()
        return self.mango_account_id.action_mango_refresh_lines()

    def action_mango_view_refused_events(self):
        return self.mango_account_id.action_view_refused_events()
