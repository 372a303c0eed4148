from odoo import api, fields, models

from odoo.addons.mango_telephony.compat.constraints import table_constraints


@table_constraints
class MangoLdapServer(models.Model):
    """One directory host; the ordered list gives the failover sequence."""

    _name = "mango.ldap.server"
    _description = "Directory server (failover order)"
    _order = "directory_id, sequence, id"

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    host = fields.Char(
        required=True, help="Host name or IP address of a domain controller."
    )
    port = fields.Integer(
        help="Leave empty for the transport's standard port (636 for LDAPS, 389 otherwise)."
    )
    effective_port = fields.Integer(compute="_compute_effective_port")

    _sql_constraints = [
        (
            "port_range",
            "CHECK(port IS NULL OR (port >= 0 AND port < 65536))",
            "The port must be between 1 and 65535.",
        ),
    ]

    @api.depends("port", "directory_id.transport")
    def _compute_effective_port(self):
        for server in self:
            if server.port:
                server.effective_port = server.port
            else:
                server.effective_port = (
                    636 if server.directory_id.transport == "ldaps" else 389
                )

    @api.depends("host", "effective_port")
    def _compute_display_name(self):
        for server in self:
            server.display_name = f"{server.host}:{server.effective_port}"
