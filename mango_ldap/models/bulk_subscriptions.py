"""Automatic subscriptions of a directory import, one query per batch.

When an internal user is created Odoo subscribes them to the channels of their
groups (#general for "Internal User") and to the default periodic digest. Both
are written as "everybody subscribed so far, plus the newcomers": mail loads
*every* user of the channel's groups, their partners and every member of the
channel; digest loads every recipient of the digest with all their ``res.users``
columns (to drop archived ones). For a directory import that is the whole staff
again for each batch of 500 people, so the import slows down and its memory grows
with the size of the company: together the largest part of a 10,000-person
import's peak memory.

Under the import's context the very same subscriptions are made by SQL that only
looks at who is missing: the channels' active users whose active partner is not
a member yet, and the batch's internal users not yet recipients of the default
digest.
"""

from odoo import api, models
from odoo.tools import SQL

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS, groups_granting

# Context key the directory import sets while it creates users and grants groups.
SUBSCRIBE_BY_QUERY = "mango_ldap_subscribe_by_query"
# Set only around Odoo's own res.users creation, so that digest's subscription
# step finds no default digest and ours adds the batch instead.
_DIGEST_BY_QUERY = "mango_ldap_digest_by_query"
_DEFAULT_DIGEST_PARAMS = ("digest.default_digest_emails", "digest.default_digest_id")


class DiscussChannel(models.Model):
    _inherit = "discuss.channel"

    def _subscribe_users_automatically_get_members(self):
        if not self.env.context.get(SUBSCRIBE_BY_QUERY) or not self:
            return super()._subscribe_users_automatically_get_members()
        self.env["res.users"].flush_model(["active", "partner_id", USER_GROUPS])
        self.env["res.partner"].flush_model(["active"])
        self.env["discuss.channel.member"].flush_model(["channel_id", "partner_id"])
        channel_ids, group_ids = [], []
        for channel in self:
            for group in groups_granting(channel.group_ids):
                channel_ids.append(channel.id)
                group_ids.append(group.id)
        user_groups = self.env["res.users"]._fields[USER_GROUPS]
        self.env.cr.execute(
            SQL(
                """SELECT c.channel, array_agg(DISTINCT u.partner_id)
                     FROM unnest(%(channel_ids)s::int[], %(group_ids)s::int[])
                          AS c(channel, gid)
                     JOIN %(user_groups)s g ON g.%(group_col)s = c.gid
                     JOIN res_users u ON u.id = g.%(user_col)s AND u.active
                     JOIN res_partner p ON p.id = u.partner_id AND p.active
                    WHERE NOT EXISTS (
                            SELECT 1 FROM discuss_channel_member m
                             WHERE m.channel_id = c.channel
                               AND m.partner_id = u.partner_id)
                 GROUP BY c.channel""",
                channel_ids=channel_ids,
                group_ids=group_ids,
                user_groups=SQL.identifier(user_groups.relation),
                user_col=SQL.identifier(user_groups.column1),
                group_col=SQL.identifier(user_groups.column2),
            )
        )
        missing = dict(self.env.cr.fetchall())
        return {channel.id: sorted(missing.get(channel.id, ())) for channel in self}


class IrConfigParameter(models.Model):
    _inherit = "ir.config_parameter"

    def get_param(self, key, default=False):
        if key in _DEFAULT_DIGEST_PARAMS and self.env.context.get(_DIGEST_BY_QUERY):
            return default
        return super().get_param(key, default)


class ResUsers(models.Model):
    _inherit = "res.users"

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.context.get(SUBSCRIBE_BY_QUERY):
            return super().create(vals_list)
        users = super(ResUsers, self.with_context(**{_DIGEST_BY_QUERY: True})).create(
            vals_list
        )
        users = users.with_env(self.env)
        users._mango_subscribe_digest()
        return users

    def _mango_subscribe_digest(self):
        """What digest's ``res.users.create`` does, without reading the digest's
        recipients: the internal users among ``self`` become recipients of the
        default digest, when the default digest is on."""
        params = self.env["ir.config_parameter"].sudo()
        digest_id = params.get_param("digest.default_digest_id")
        if not (params.get_param("digest.default_digest_emails") and digest_id):
            return
        try:
            digest = self.env["digest.digest"].sudo().browse(int(digest_id)).exists()
        except ValueError:
            return
        internal = self.filtered_domain([("share", "=", False)])
        if not digest or not internal:
            return
        recipients = digest._fields["user_ids"]
        self.env.cr.execute(
            SQL(
                """INSERT INTO %(table)s (%(digest_col)s, %(user_col)s)
                        SELECT %(digest)s, unnest(%(users)s::int[])
                   ON CONFLICT DO NOTHING""",
                table=SQL.identifier(recipients.relation),
                digest_col=SQL.identifier(recipients.column1),
                user_col=SQL.identifier(recipients.column2),
                digest=digest.id,
                users=list(internal.ids),
            )
        )
        digest.invalidate_recordset(["user_ids", "is_subscribed"])
