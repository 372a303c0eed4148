"""Live progress of a directory sync: the bus messages the web client's listener
(static/src/sync_progress) consumes, who receives them, and the listener itself
in a browser. No directory server is needed: the run's progress is driven here."""

import json
import threading
import time
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.bus.models.bus import channel_with_db, hashable
from odoo.addons.bus.websocket import WebsocketConnectionHandler
from odoo.addons.mango_ldap.models.mango_ldap_sync_run import PROGRESS_NOTIFICATION
from odoo.addons.mango_ldap.sync import DirectorySync
from odoo.addons.mango_telephony.tests.common import (
    MangoHttpCase,
    push_bus_notifications,
    wait_for_bus_subscription,
)

# Every key sync_progress_service.esm.js / sync_progress.esm.js read.
LISTENER_KEYS = {
    "run_id",
    "directory_id",
    "directory_name",
    "state",
    "dry_run",
    "done",
    "total",
    "entries_seen",
    "created",
    "updated",
    "archived",
    "held",
    "pbx",
    "errors",
    "warnings",
    "final",
}


def _directory(env, name="Head office AD"):
    return env["mango.ldap.directory"].create(
        {
            "name": name,
            "directory_type": "openldap",
            "login_attribute": "uid",
            "server_ids": [Command.create({"host": "ldap.example.test", "port": 636})],
        }
    )


@tagged("post_install", "-at_install")
class TestSyncProgressMessages(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.directory = _directory(cls.env)
        cls.admin = new_test_user(
            cls.env, login="ldap.admin", groups="base.group_user,base.group_system"
        )
        cls.telephony_admin = new_test_user(
            cls.env,
            login="tel.admin",
            groups="base.group_user,mango_telephony.group_mango_admin",
        )
        cls.salesman = new_test_user(
            cls.env,
            login="ldap.salesman",
            groups="base.group_user,mango_telephony.group_mango_user",
        )
        other_company = cls.env["res.company"].create({"name": "Elsewhere Ltd"})
        cls.other_admin = new_test_user(
            cls.env,
            login="other.admin",
            groups="base.group_user,base.group_system",
            company_id=other_company.id,
            company_ids=[Command.set(other_company.ids)],
        )

    def setUp(self):
        super().setUp()
        self.env["bus.bus"].sudo().search([]).unlink()

    def progress_messages(self):
        """``{partner id: [payload, …]}`` of the progress messages sent so far."""
        self.env.cr.precommit.run()
        sent = {}
        for note in self.env["bus.bus"].sudo().search([], order="id"):
            message = json.loads(note.message)
            if message["type"] == PROGRESS_NOTIFICATION:
                partner_id = json.loads(note.channel)[-1]
                sent.setdefault(partner_id, []).append(message["payload"])
        self.env["bus.bus"].sudo().search([]).unlink()
        return sent

    def test_engine_progress_reaches_the_companys_administrators(self):
        run = self.env["mango.ldap.sync.run"].create(
            {"directory_id": self.directory.id, "mode": "full", "state": "running"}
        )
        sync = DirectorySync(self.directory, run=run.with_user(self.admin))
        sync._progress(0, 400)
        sync._progress(120)
        run.write({"state": "done", "created_count": 3, "updated_count": 2})
        sync._notify(final=True)
        sent = self.progress_messages()
        self.assertIn(self.admin.partner_id.id, sent)
        self.assertIn(self.telephony_admin.partner_id.id, sent)
        self.assertNotIn(self.salesman.partner_id.id, sent)
        self.assertNotIn(self.other_admin.partner_id.id, sent)
        messages = sent[self.admin.partner_id.id]
        self.assertEqual(
            [(m["done"], m["total"], m["final"]) for m in messages],
            [(0, 400, False), (120, 400, False), (120, 400, True)],
        )
        for message in messages:
            self.assertEqual(set(message), LISTENER_KEYS)
        last = messages[-1]
        self.assertEqual(last["run_id"], run.id)
        self.assertEqual(last["directory_id"], self.directory.id)
        self.assertEqual(last["directory_name"], "Head office AD")
        self.assertEqual(last["state"], "done")
        self.assertEqual((last["created"], last["updated"]), (3, 2))
        self.assertEqual(json.loads(json.dumps(last)), last)

    def test_scheduled_run_still_reaches_administrators(self):
        """The cron runs as the superuser: nobody clicked, admins still see it."""
        run = self.env["mango.ldap.sync.run"].create(
            {"directory_id": self.directory.id, "mode": "delta", "trigger": "cron"}
        )
        root = self.env["res.users"].browse(SUPERUSER_ID)
        run._mango_send_progress(final=False, requester=root)
        sent = self.progress_messages()
        self.assertIn(self.admin.partner_id.id, sent)
        self.assertNotIn(root.partner_id.id, sent)


@tagged("post_install", "-at_install")
class TestSyncProgressTour(MangoHttpCase):
    def test_run_form_follows_the_sync(self):
        """The run form shows the bus's progress as it comes and tells the admin
        when the run ends, then shows the final counts."""
        self.startPatcher(
            patch.object(
                WebsocketConnectionHandler, "websocket_allowed", return_value=True
            )
        )
        directory = _directory(self.env, "Tour directory")
        run = self.env["mango.ldap.sync.run"].create(
            {"directory_id": directory.id, "mode": "full", "state": "running"}
        )
        admin = self.env.ref("base.user_admin")
        channel = hashable(channel_with_db(self.registry.db_name, admin.partner_id))
        failures = []

        def send(values, final=False):
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                target = env["mango.ldap.sync.run"].browse(run.id)
                target.write(values)
                target._mango_send_progress(final=final)
            push_bus_notifications(channel)

        def drive():
            try:
                wait_for_bus_subscription(channel)
                time.sleep(2)
                send({"entries_seen": 250})
                time.sleep(2)
                send({"progress_done": 120, "progress_total": 400})
                time.sleep(2)
                send(
                    {
                        "progress_done": 400,
                        "state": "done",
                        "created_count": 3,
                        "updated_count": 2,
                    },
                    final=True,
                )
            except Exception as error:  # noqa: BLE001 - reported by the test
                failures.append(error)

        driver = threading.Thread(target=drive, name="mango-ldap-progress-driver")
        driver.start()
        try:
            self.start_tour(
                f"/odoo/mango.ldap.sync.run/{run.id}",
                "mango_ldap_progress_tour",
                login="admin",
            )
        finally:
            driver.join(60)
        self.assertFalse(failures, failures)
