from odoo import api, fields, models


class MangoLdapSipReveal(models.TransientModel):
    """Shows the SIP passwords of a run exactly once.

    The passwords travel to the browser as default values only: ``default_get``
    deletes the stored copies in the same transaction, and the dialog has no
    save button, so nothing is written back.
    """

    _name = "mango.ldap.sip.reveal"
    _description = "New SIP passwords (shown once)"

    run_id = fields.Many2one("mango.ldap.sync.run", readonly=True)
    credentials = fields.Text(readonly=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        run_id = values.get("run_id") or self.env.context.get("default_run_id")
        if "credentials" in fields_list and run_id:
            self.env["mango.ldap.sync.run"].browse(run_id).check_access("read")
            secrets = (
                self.env["mango.ldap.sip.secret"]
                .sudo()
                .search([("run_id", "=", run_id)])
            )
            rows = [
                f"{secret.user_name or ''}\t{secret.sip_login}\t{secret.password}"
                for secret in secrets
            ]
            values["credentials"] = "\n".join(rows) or self.env._(
                "These passwords were already shown; set new ones on the PBX if they were lost."
            )
            secrets.unlink()
        return values
