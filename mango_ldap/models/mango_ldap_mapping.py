from odoo import api, fields, models
from odoo.exceptions import ValidationError

TARGET_MODELS = {"user": "res.users", "employee": "hr.employee"}

# Field types a directory string can be written into; relations are resolved
# by name (departments and job positions are created when missing, managers are
# resolved through the manager's own link).
SUPPORTED_TTYPES = (
    "char",
    "text",
    "html",
    "selection",
    "integer",
    "float",
    "boolean",
    "date",
    "many2one",
)

PBX_FIELDS = [
    ("extension", "Extension"),
    ("mobile", "Mobile number"),
    ("position", "Position"),
    ("department", "Department"),
    ("email", "E-mail"),
    ("name", "Full name"),
]


class MangoLdapMapping(models.Model):
    """Directory attribute → Odoo user / employee field or PBX user field."""

    _name = "mango.ldap.mapping"
    _description = "Directory attribute mapping"
    _order = "directory_id, sequence, id"

    directory_id = fields.Many2one(
        "mango.ldap.directory", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    attribute = fields.Char(
        string="Directory attribute",
        required=True,
        help="LDAP attribute name, e.g. displayName, mail, title, department, manager.",
    )
    target = fields.Selection(
        [("user", "User"), ("employee", "Employee"), ("pbx", "PBX user")],
        required=True,
        default="user",
    )
    target_model = fields.Char(compute="_compute_target_model")
    field_id = fields.Many2one(
        "ir.model.fields",
        ondelete="cascade",
        domain=f"[('model', '=', target_model), ('store', '=', True), "
        f"('readonly', '=', False), ('ttype', 'in', {list(SUPPORTED_TTYPES)})]",
    )
    pbx_field = fields.Selection(PBX_FIELDS, string="PBX field")
    transform = fields.Selection(
        [
            ("first", "First value, as is"),
            ("trim", "First value, trimmed"),
            ("lower", "Lower case"),
            ("upper", "Upper case"),
            ("digits", "Digits only"),
            ("phone", "Phone number (international)"),
            ("joined", "All values joined"),
        ],
        required=True,
        default="trim",
    )
    rule = fields.Selection(
        [
            ("create_only", "On create only"),
            ("always", "Always overwrite"),
            ("when_empty", "Only when empty"),
            ("ignore", "Ignore"),
        ],
        string="Sync rule",
        required=True,
        default="always",
    )

    # Core transform chains (mango_office.directory.FieldMapping.transforms).
    TRANSFORM_CHAINS = {
        "first": ("first",),
        "trim": ("first", "trim"),
        "lower": ("first", "trim", "lower"),
        "upper": ("first", "trim", "upper"),
        "digits": ("first", "digits"),
        "phone": ("first", "phone"),
        "joined": ("joined", "trim"),
    }

    @property
    def _mango_target(self):
        """Target key the core planner uses: user.<field>, employee.<field>, pbx.<field>."""
        if self.target == "pbx":
            return f"pbx.{self.pbx_field}"
        return f"{self.target}.{self.field_id.name}"

    @api.depends("target")
    def _compute_target_model(self):
        for mapping in self:
            mapping.target_model = TARGET_MODELS.get(mapping.target, False)

    @api.onchange("target")
    def _onchange_target(self):
        if self.field_id and self.field_id.model != TARGET_MODELS.get(self.target):
            self.field_id = False

    @api.constrains("target", "field_id", "pbx_field")
    def _check_target(self):
        for mapping in self:
            if mapping.target == "pbx":
                if not mapping.pbx_field:
                    raise ValidationError(
                        self.env._(
                            "Choose the PBX field for attribute %s.", mapping.attribute
                        )
                    )
                continue
            if not mapping.field_id:
                raise ValidationError(
                    self.env._("Choose the field for attribute %s.", mapping.attribute)
                )
            if mapping.field_id.model != TARGET_MODELS[mapping.target]:
                raise ValidationError(
                    self.env._(
                        "Field %(field)s does not belong to %(model)s.",
                        field=mapping.field_id.name,
                        model=TARGET_MODELS[mapping.target],
                    )
                )
            if mapping.field_id.ttype not in SUPPORTED_TTYPES:
                raise ValidationError(
                    self.env._(
                        "Field %(field)s has type %(type)s, which a directory value cannot fill.",
                        field=mapping.field_id.name,
                        type=mapping.field_id.ttype,
                    )
                )
            if mapping.field_id.name in (
                "login",
                "active",
                "password",
                "groups_id",
                "group_ids",
                "all_group_ids",
                "user_id",
            ):
                raise ValidationError(
                    self.env._(
                        "Field %s is managed by the sync itself and cannot be mapped.",
                        mapping.field_id.name,
                    )
                )

    @api.depends("attribute", "target", "field_id", "pbx_field")
    def _compute_display_name(self):
        for mapping in self:
            target = (
                mapping.pbx_field if mapping.target == "pbx" else mapping.field_id.name
            )
            mapping.display_name = (
                f"{mapping.attribute} → {mapping.target}.{target or '?'}"
            )
