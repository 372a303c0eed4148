from odoo import fields, models

from odoo.addons.mango_telephony.compat.constraints import table_constraints


@table_constraints
class MangoLdapLink(models.Model):
    """The tie between one directory entry (by its immutable GUID) and what
    the sync created or adopted for it. Nothing without a link is ever touched.
    """

    _name = "mango.ldap.link"
    _description = "Directory entry link"
    _order = "directory_id, name, id"
    _rec_name = "name"

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    anchor = fields.Char(
        string="Directory GUID",
        required=True,
        help="objectGUID (Active Directory) or entryUUID (OpenLDAP): survives renames and moves.",
    )
    dn = fields.Char(string="Current DN", index=True)
    name = fields.Char()
    login = fields.Char()
    user_id = fields.Many2one("res.users", ondelete="set null", index=True)
    employee_id = fields.Many2one("hr.employee", ondelete="set null", index=True)
    pbx_user_id = fields.Char(string="PBX user id", index=True)
    extension = fields.Char(index=True)
    sip_id = fields.Char(string="SIP account id")
    sip_login = fields.Char(string="SIP login")
    reserved_until = fields.Date(
        help="A departed user's extension stays reserved until this date."
    )
    state = fields.Selection(
        [
            ("active", "Active"),
            ("disabled", "Disabled in the directory"),
            ("departed", "Departed"),
        ],
        default="active",
        required=True,
        index=True,
    )
    departed_at = fields.Datetime()
    entry_hash = fields.Char(
        help="Digest of the entry as last applied; an unchanged entry is skipped."
    )
    pbx_state = fields.Selection(
        [
            ("none", "Not provisioned"),
            ("active", "Provisioned"),
            ("disabled", "Disabled"),
            ("deleted", "Deleted"),
            ("error", "Rejected, retried next run"),
        ],
        default="none",
        required=True,
    )
    pbx_error = fields.Char()
    pbx_role = fields.Char(help="Mango access role id last sent.")
    last_seen = fields.Datetime()
    # Telephony administrators read links, not grants (system administrators'
    # business): the field is not theirs to read, so no view fails for them.
    grant_ids = fields.One2many(
        "mango.ldap.grant", "link_id", groups="base.group_system"
    )

    _sql_constraints = [
        (
            "anchor_unique",
            "UNIQUE(directory_id, anchor)",
            "A directory entry can be linked once.",
        ),
    ]
