"""What an administrator meets while setting a directory up, before any sync: the
presets, the connection test's answers, the scope-change banner, and the preview's
change lines in the reader's language. No directory server is needed (an
unreachable one is the point of some tests); test_sync_openldap.py and
test_ui_directory.py do the same against a real slapd."""

import json

from odoo import Command
from odoo.tests import TransactionCase, tagged

from odoo.addons.mango_telephony.tests.common import free_closed_port


def _directory(env, **values):
    return env["mango.ldap.directory"].create(
        {
            "name": "Head office",
            "directory_type": "openldap",
            "transport": "plain",
            "login_attribute": "uid",
            "server_ids": [
                Command.create({"host": "127.0.0.1", "port": free_closed_port()})
            ],
            "base_dn_ids": [Command.create({"dn": "ou=people,dc=example,dc=test"})],
            "bind_dn": "cn=odoo-sync,dc=example,dc=test",
            **values,
        }
    )


@tagged("post_install", "-at_install")
class TestDirectorySetup(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Readers of other languages: labels and answers are worded for each.
        cls.env["res.lang"]._activate_lang("ru_RU")
        cls.env["res.lang"]._activate_lang("fi_FI")
        cls.env["ir.module.module"]._load_module_terms(
            ["base", "hr", "mango_telephony", "mango_ldap"],
            ["ru_RU", "fi_FI"],
            overwrite=True,
        )

    # ------------------------------------------------------------ presets
    def test_presets_give_each_field_one_source(self):
        """Two mapping lines for the user's name (displayName and cn) read as a
        conflict; a preset sets each field up as an administrator would, once."""
        directory = _directory(self.env)
        for preset, name_source in (
            (directory.action_preset_openldap, "cn"),
            (directory.action_preset_active_directory, "displayName"),
        ):
            preset()
            targets = [m._mango_target for m in directory.mapping_ids]
            self.assertEqual(
                sorted(t for t in targets if targets.count(t) > 1), [], preset
            )
            name = directory.mapping_ids.filtered(
                lambda m: m._mango_target == "user.name"
            )
            self.assertEqual(name.attribute, name_source)

    # ------------------------------------------------------- scope banner
    def test_a_new_directory_has_no_scope_change(self):
        """Setting up a directory nobody was synced from (presets, first filters,
        servers) is no change of scope: the banner saying the next sync holds
        every removal must not greet a fresh directory."""
        directory = _directory(self.env)
        directory.action_preset_openldap()
        directory.write(
            {
                "user_filter": "(ou=R&D)",
                "base_dn_ids": [Command.create({"dn": "ou=sales,dc=example,dc=test"})],
                "server_ids": [Command.create({"host": "ldap2.example.test"})],
            }
        )
        directory.action_preset_active_directory()
        self.assertFalse(directory.scope_changed)

    def test_scope_change_after_a_sync_is_flagged(self):
        directory = _directory(self.env, user_filter="(ou=R&D)")
        directory.action_preset_openldap()
        # what a complete full run records
        directory.write({"scope_fingerprint": "recorded", "scope_changed": False})
        # the same values again (a form saving unchanged lines, a preset re-applied)
        directory.write({"user_filter": " (ou=R&D) "})
        directory.action_preset_openldap()
        self.assertFalse(directory.scope_changed)
        directory.user_filter = "(ou=Sales)"
        self.assertTrue(directory.scope_changed)
        directory.scope_changed = False
        directory.server_ids = [Command.create({"host": "dc2.example.test"})]
        self.assertTrue(directory.scope_changed)

    def test_linked_people_are_a_baseline_too(self):
        """An incomplete first run records no fingerprint, yet linked people can
        be stranded by a narrower filter."""
        directory = _directory(self.env)
        self.env["mango.ldap.link"].create(
            {"directory_id": directory.id, "anchor": "a-1", "dn": "uid=a,dc=x"}
        )
        directory.user_filter = "(ou=Sales)"
        self.assertTrue(directory.scope_changed)

    # ---------------------------------------------------- connection test
    def test_connection_failure_is_named_stored_and_shown(self):
        directory = _directory(self.env)
        action = directory.action_test_connection()
        self.assertEqual(action["tag"], "display_notification")
        params = action["params"]
        self.assertEqual(params["type"], "danger")
        self.assertTrue(params["sticky"])
        self.assertEqual(params["next"]["tag"], "soft_reload")
        server = f"ldap://127.0.0.1:{directory.server_ids.port}"
        self.assertIn(f"{server} cannot be reached", params["message"])
        self.assertIn("Connection refused", params["message"])
        self.assertIn("plain LDAP", params["message"])  # the warning
        self.assertEqual(directory.connection_state, "failed")
        self.assertTrue(directory.connection_checked_at)
        self.assertEqual(directory.connection_message, params["message"])
        # a change of what was tested makes the result stale
        directory.timeout = 5
        self.assertEqual(directory.connection_state, "unknown")

    def test_connection_result_is_worded_for_each_reader(self):
        """Stored as codes, worded when read: a Russian reader does not get the
        sentence of whoever pressed the button."""
        directory = _directory(self.env)
        directory.with_context(lang="fi_FI").action_test_connection()
        english = directory.with_context(lang="en_US").connection_message
        russian = directory.with_context(lang="ru_RU").connection_message
        finnish = directory.with_context(lang="fi_FI").connection_message
        self.assertIn("cannot be reached", english)
        self.assertNotIn("cannot be reached", russian)
        self.assertIn("недоступен", russian)
        self.assertIn("ei saada yhteyttä", finnish)
        self.assertEqual(
            json.loads(directory.connection_outcome)["failure"]["kind"], "connection"
        )

    def test_connection_test_names_what_is_missing(self):
        """Nothing to test yet: a warning saying what to add, never a traceback,
        and no stored verdict on a check that did not happen."""
        no_base = _directory(self.env, base_dn_ids=[])
        params = no_base.action_test_connection()["params"]
        self.assertEqual(params["type"], "warning")
        self.assertIn("Add at least one search base", params["message"])
        self.assertEqual(no_base.connection_state, "unknown")
        no_server = _directory(self.env, server_ids=[])
        params = no_server.action_test_connection()["params"]
        self.assertIn("Add at least one directory server", params["message"])

    # ---------------------------------------------------- preview lines
    def _line(self, action, changes, directory=None):
        directory = directory or _directory(self.env)
        run = self.env["mango.ldap.sync.run"].create(
            {"directory_id": directory.id, "mode": "full", "dry_run": True}
        )
        return self.env["mango.ldap.sync.run.line"].create(
            {
                "run_id": run.id,
                "action": action,
                "status": "planned",
                "changes": json.dumps(changes),
            }
        )

    def test_preview_shows_field_labels_in_the_readers_language(self):
        line = self._line(
            "create",
            {
                "employee.department_id": [None, "R&D"],
                "employee.name": [None, "Anna Virtanen"],
                "user.login": [None, "user0001"],
                "pbx.position": [None, "Engineer"],
                "extension": [None, "301"],
            },
        )
        self.assertEqual(
            line.changes_display.splitlines(),
            [
                "User › Login: user0001",
                "Employee › Department: R&D",
                "Employee › Full name: Anna Virtanen",
                "PBX user › Extension: 301",
                "PBX user › Position: Engineer",
            ],
        )
        russian = line.with_context(lang="ru_RU").changes_display
        self.assertIn("Пользователь › Логин: user0001", russian)
        self.assertIn("Сотрудник › Отдел: R&D", russian)
        self.assertNotIn("department_id", russian)
        finnish = line.with_context(lang="fi_FI").changes_display
        self.assertNotIn("user.login", finnish)
        self.assertIn("Työntekijä › Osasto: R&D", finnish)
        # Odoo's own Finnish leaves hr's "Employee Name" in English
        self.assertIn("Työntekijä › Koko nimi: Anna Virtanen", finnish)
        self.assertIn("Сотрудник › ФИО: Anna Virtanen", russian)

    def test_update_and_pbx_lines(self):
        directory = _directory(self.env, account_id=False)
        update = self._line(
            "update", {"employee.job_title": ["Engineer", "Lead"]}, directory
        )
        self.assertEqual(
            update.changes_display, "Employee › Job Title: Engineer → Lead"
        )
        pbx = self._line(
            "pbx_update",
            {"position": [None, "Lead"], "mobile": [None, "79161234567"]},
            directory,
        )
        self.assertEqual(
            pbx.changes_display.splitlines(),
            [
                "PBX user › Mobile number: ∅ → 79161234567",
                "PBX user › Position: ∅ → Lead",
            ],
        )
        roles = self._line(
            "roles", {"grant": [None, ["Telephony / User"]], "revoke": [[], None]}
        )
        self.assertEqual(roles.changes_display, "Groups granted: Telephony / User")
