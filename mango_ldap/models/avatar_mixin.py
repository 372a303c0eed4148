"""No stored initials avatar for people a directory import creates.

``res.users`` and ``hr.employee`` creation store the generated initials picture as
``image_1920`` (five resized attachments per record, for the user's partner and
again for the employee, each stored by a write per record): about a third of a
bulk import's time for 10,000 people. The ``avatar_*`` fields compute the very
same picture on the fly when no image is stored, so under the import's context
the generation returns nothing and the resulting "no picture → no picture"
writes are skipped. A picture set later by anyone behaves as usual.
"""

from odoo import models

# Context key the directory import sets while it creates users and employees.
SKIP_STORED_AVATAR = "mango_ldap_skip_stored_avatar"


def _is_empty_image_write(records, vals):
    """The no-op write Odoo's create makes after an avatar generation that
    returned nothing (only ever under the import's context)."""
    return bool(
        records.env.context.get(SKIP_STORED_AVATAR)
        and vals.keys() == {"image_1920"}
        and not vals["image_1920"]
        and not any(records.mapped("image_1920"))
    )


class AvatarMixin(models.AbstractModel):
    _inherit = "avatar.mixin"

    def _avatar_generate_svg(self):
        if self.env.context.get(SKIP_STORED_AVATAR):
            return False
        return super()._avatar_generate_svg()

    def write(self, vals):
        if _is_empty_image_write(self, vals):
            return True
        return super().write(vals)


class ResUsers(models.Model):
    _inherit = "res.users"

    def write(self, vals):
        # res.users reaches the partner's image through _inherits, not the mixin
        if _is_empty_image_write(self, vals):
            return True
        return super().write(vals)
