from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_ldap.models.bulk_subscriptions import SUBSCRIBE_BY_QUERY
from odoo.addons.mango_ldap.sync.apply_odoo import CREATE_CONTEXT
from odoo.addons.mango_telephony.compat.groups import USER_GROUPS


@tagged("post_install", "-at_install", "mango_ldap")
class TestBulkSubscriptions(TransactionCase):
    """The import's subscriptions by query give exactly Odoo's own subscriptions."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.group = cls.env["res.groups"].create({"name": "Mango bulk test group"})
        cls.internal = cls.env.ref("base.group_user")
        cls.channel = cls.env["discuss.channel"].create(
            {"name": "mango-bulk-test", "channel_type": "channel"}
        )
        # linked by SQL: Odoo's own write would subscribe the group right away
        cls.env.cr.execute(
            "INSERT INTO discuss_channel_res_groups_rel VALUES (%s, %s)",
            (cls.channel.id, cls.group.id),
        )
        cls.channel.invalidate_recordset(["group_ids"])
        cls.digest = cls.env["digest.digest"].create({"name": "Mango bulk digest"})
        params = cls.env["ir.config_parameter"].sudo()
        params.set_param("digest.default_digest_emails", "True")
        params.set_param("digest.default_digest_id", str(cls.digest.id))

    def _users(self, prefix, count, context=None, groups=None):
        Users = self.env["res.users"].with_context(**(context or {}))
        return Users.create(
            [
                {
                    "name": f"{prefix} {i}",
                    "login": f"{prefix.lower()}{i}@bulk.test",
                    USER_GROUPS: [Command.set((groups or self.internal).ids)],
                }
                for i in range(count)
            ]
        )

    def _missing_both_ways(self):
        plain = self.channel._subscribe_users_automatically_get_members()
        by_query = self.channel.with_context(
            **{SUBSCRIBE_BY_QUERY: True}
        )._subscribe_users_automatically_get_members()
        return {k: sorted(v) for k, v in plain.items()}, by_query

    def test_missing_members_same_as_odoo(self):
        groups = self.internal | self.group
        members = self._users("Member", 2, groups=groups)
        archived = self._users("Archived", 1, groups=groups)
        gone_partner = self._users("Gone", 1, groups=groups)
        others = self._users("Other", 2)  # not in the channel's group
        archived.active = False
        # Odoo refuses to archive an active user's partner; data can still hold one
        self.env.cr.execute(
            "UPDATE res_partner SET active = FALSE WHERE id = %s",
            (gone_partner.partner_id.id,),
        )
        # everybody left the channel but the first member
        self.env.cr.execute(
            "DELETE FROM discuss_channel_member WHERE channel_id = %s"
            " AND partner_id != %s",
            (self.channel.id, members[0].partner_id.id),
        )
        self.env.invalidate_all()
        plain, by_query = self._missing_both_ways()
        self.assertEqual(plain, by_query)
        missing = set(by_query[self.channel.id])
        self.assertIn(members[1].partner_id.id, missing)
        self.assertNotIn(members[0].partner_id.id, missing)
        self.assertNotIn(archived.partner_id.id, missing)
        self.assertNotIn(gone_partner.partner_id.id, missing)
        self.assertFalse(missing & set(others.partner_id.ids))

    def test_import_context_subscribes_like_odoo(self):
        general = self.env.ref("mail.channel_all_employees")
        plain = self._users("Plain", 3, groups=self.internal | self.group)
        imported = self._users(
            "Imported", 3, context=CREATE_CONTEXT, groups=self.internal | self.group
        )
        portal = self._users(
            "Portal",
            1,
            context=CREATE_CONTEXT,
            groups=self.env.ref("base.group_portal"),
        )
        for users in (plain, imported):
            for channel in (general, self.channel):
                self.assertLessEqual(
                    set(users.partner_id.ids),
                    set(channel.channel_member_ids.partner_id.ids),
                    channel.name,
                )
            self.assertLessEqual(set(users.ids), set(self.digest.user_ids.ids))
        self.assertNotIn(portal, self.digest.user_ids)
        self.assertNotIn(portal.partner_id, general.channel_member_ids.partner_id)
        # the context stays the caller's
        self.assertTrue(imported.env.context.get(SUBSCRIBE_BY_QUERY))
        self.assertEqual(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("digest.default_digest_id"),
            str(self.digest.id),
        )

    def test_import_context_without_default_digest(self):
        self.env["ir.config_parameter"].sudo().set_param(
            "digest.default_digest_emails", False
        )
        before = self.digest.user_ids
        self._users("Quiet", 2, context=CREATE_CONTEXT)
        self.assertEqual(self.digest.user_ids, before)

    def test_granted_group_subscribes_by_query(self):
        users = self._users("Later", 2, context=CREATE_CONTEXT)
        self.assertFalse(
            set(users.partner_id.ids)
            & set(self.channel.channel_member_ids.partner_id.ids)
        )
        users.with_context(**{SUBSCRIBE_BY_QUERY: True}).write(
            {USER_GROUPS: [Command.link(self.group.id)]}
        )
        self.channel.invalidate_recordset()
        self.assertLessEqual(
            set(users.partner_id.ids),
            set(self.channel.channel_member_ids.partner_id.ids),
        )
