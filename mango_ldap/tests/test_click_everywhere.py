"""Directory sync's menus and views in the browser, as an administrator and as each
telephony role (see mango_telephony/tests/click_everywhere.py).

Settings → IP telephony → Directories crashed for everyone who opened it (a compute
left ``last_run_state`` unassigned); ``test_as_administrator`` fails on that.
"""

import json
from datetime import timedelta

from odoo import Command, fields
from odoo.tests import tagged

from odoo.addons.mango_telephony.tests.click_everywhere import (
    MangoClickEverywhereMixin,
)
from odoo.addons.mango_telephony.tests.common import MangoHttpCase


@tagged("post_install", "-at_install")
class TestClickEverywhere(MangoClickEverywhereMixin, MangoHttpCase):
    mango_addon = "mango_ldap"
    mango_navigation_buttons = {
        "mango.ldap.sync.run": ("action_reveal_sip_passwords",),
    }

    @classmethod
    def mango_setup_records(cls):
        """A directory as an IT admin sets it up, and the traces of its first
        run: a link, run lines and a SIP password waiting to be shown. No
        directory server is needed to look at them."""
        directory = cls.env["mango.ldap.directory"].create(
            {
                "name": "Head office",
                "directory_type": "active_directory",
                "server_ids": [Command.create({"host": "dc1.corp.example"})],
                "base_dn_ids": [Command.create({"dn": "OU=Staff,DC=corp,DC=example"})],
                "account_id": cls.mango_account.id,
            }
        )
        directory.action_preset_active_directory()
        user = (
            cls.env["res.users"]
            .with_context(no_reset_password=True)
            .create({"name": "Olga Smirnova", "login": "olga.smirnova"})
        )
        link = cls.env["mango.ldap.link"].create(
            {
                "directory_id": directory.id,
                "anchor": "6093672e-5b0d-4c55-9a34-2a6c1f0e7d11",
                "dn": "CN=Olga Smirnova,OU=Staff,DC=corp,DC=example",
                "name": "Olga Smirnova",
                "login": "olga.smirnova",
                "user_id": user.id,
                "extension": "201",
                "pbx_user_id": "400100201",
                "pbx_state": "active",
                "sip_login": "olga",
                "last_seen": fields.Datetime.now(),
            }
        )
        now = fields.Datetime.now()
        run = cls.env["mango.ldap.sync.run"].create(
            {
                "directory_id": directory.id,
                "mode": "full",
                "state": "done",
                "started_at": now - timedelta(seconds=12),
                "finished_at": now,
                "entries_seen": 1,
                "created_count": 1,
                "pbx_count": 2,
                "line_ids": [
                    Command.create(
                        {
                            "link_id": link.id,
                            "anchor": link.anchor,
                            "dn": link.dn,
                            "entry_name": link.name,
                            "action": action,
                            "status": "done",
                            "changes": json.dumps(changes),
                        }
                    )
                    for action, changes in (
                        ("create", {"user.login": [None, "olga.smirnova"]}),
                        ("pbx_create", {"extension": [None, "201"]}),
                        ("sip_create", {"sip_login": [None, "olga"]}),
                    )
                ],
            }
        )
        cls.env["mango.ldap.sip.secret"].create(
            {
                "run_id": run.id,
                "link_id": link.id,
                "user_name": link.name,
                "sip_login": "olga",
                "password": "Xq7-generated-once",
            }
        )
        cls.mango_run = run

    def mango_extra_steps(self, env):
        run = self.mango_run.with_env(env)
        if not env["ir.model.access"].check(run._name, "read", False):
            return []
        line = run.line_ids[:1]
        # A run line opens from the run's list in a dialog.
        steps = [
            {
                "label": f"Run line {line.entry_name}",
                "action": {
                    "type": "ir.actions.act_window",
                    "res_model": line._name,
                    "res_id": line.id,
                    "views": [[False, "form"]],
                    "target": "new",
                },
                "viewType": "form",
                "resId": line.id,
                "dialog": True,
            }
        ]
        if env.user.has_group("base.group_system"):
            steps.append(
                {
                    "label": "New SIP passwords",
                    "action": run.action_reveal_sip_passwords(),
                    "viewType": "form",
                    "dialog": True,
                }
            )
        return steps
