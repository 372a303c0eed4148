from odoo import fields, models


class MangoLdapSipSecret(models.Model):
    """A generated SIP password waiting to be shown once to an administrator.

    Mango offers no way to read a SIP password back, so the only copy lives
    here until the reveal wizard deletes it.
    """

    _name = "mango.ldap.sip.secret"
    _description = "SIP password pending one-time reveal"

    run_id = fields.Many2one("mango.ldap.sync.run", ondelete="cascade", index=True)
    link_id = fields.Many2one("mango.ldap.link", ondelete="cascade")
    user_name = fields.Char()
    sip_login = fields.Char(required=True)
    password = fields.Char(required=True, groups="base.group_system")
