import json
import time
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.mango_ldap.sync import DirectorySync
from odoo.addons.mango_telephony.compat.groups import USER_GROUPS, groups_of
from odoo.addons.mango_telephony.tests.common import free_closed_port

from .common import MangoLdapCase, host_port, start_slapd

PEOPLE = "ou=people,dc=example,dc=test"
SALES = "ou=sales,ou=people,dc=example,dc=test"
GROUPS = "ou=groups,dc=example,dc=test"


def user_dn(i):
    uid = f"user{i:04d}"
    return f"uid={uid},{SALES}" if i % 5 == 0 else f"uid={uid},{PEOPLE}"


@tagged("post_install", "-at_install", "mango_ldap")
class TestOpenLdapSync(MangoLdapCase):
    @classmethod
    def _start_server(cls):
        return start_slapd(users=20)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.directory = cls.slapd_directory(
            PEOPLE,
            name="Test OpenLDAP",
            account_id=cls.mango_account.id,
            extension_policy="range",
            extension_range_from=300,
            extension_range_to=399,
            max_removals=3,
            max_removals_percent=50,
        )
        cls.directory.action_preset_openldap()
        cls.directory.action_fetch_pbx_options()
        Option = cls.env["mango.ldap.pbx.option"]
        cls.role_staff = Option.search([("kind", "=", "role"), ("value", "=", "10451")])
        cls.directory.write(
            {
                "extension_policy": "range",
                "role_mapping_ids": [
                    Command.create(
                        {
                            "group_dn": f"cn=pbx-operators,{GROUPS}",
                            "group_ids": [
                                Command.set(
                                    cls.env.ref("mango_telephony.group_mango_user").ids
                                )
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "group_dn": f"cn=pbx-supervisors,{GROUPS}",
                            "group_ids": [
                                Command.set(
                                    cls.env.ref(
                                        "mango_telephony.group_mango_supervisor"
                                    ).ids
                                )
                            ],
                            "pbx_role_option_id": cls.role_staff.id,
                        }
                    ),
                ],
            }
        )
        # The server writes to its directory as the directory's administrator.
        cls.admin = cls.server

    def test_connection_report(self):
        action = self.directory.action_test_connection()
        message = self.directory.connection_message
        self.assertEqual(action["params"]["type"], "success", message)
        self.assertEqual(action["params"]["message"], message)
        self.assertEqual(self.directory.connection_state, "ok")
        self.assertRegex(message, r"over LDAPS \(TLSv1\.[23]\) and signed in as cn=")
        self.assertIn("Entries matching the search bases and filters: 20.", message)

    def test_connection_report_names_the_problem(self):
        """Each failure the way an administrator fixes it: the password, the
        search base, the service account's rights."""
        env = self.server.env
        directory = self.directory.copy({"name": "Wrong password"})
        directory.bind_password_input = "not the password"
        params = directory.action_test_connection()["params"]
        self.assertEqual(params["type"], "danger")
        self.assertIn(
            f"refused the sign-in as {env['LDAP_BIND_DN']} (invalidCredentials",
            params["message"],
        )
        self.assertIn("check the bind DN and the password", params["message"])
        self.assertNotIn("not the password", params["message"])
        self.assertEqual(directory.connection_state, "failed")
        directory.bind_password_input = env["LDAP_BIND_PW"]
        self.assertEqual(directory.connection_state, "unknown")
        directory.base_dn_ids = [
            Command.clear(),
            Command.create({"dn": "ou=nowhere,dc=example,dc=test"}),
        ]
        params = directory.action_test_connection()["params"]
        self.assertIn(
            "The search base ou=nowhere,dc=example,dc=test does not exist",
            params["message"],
        )
        directory.base_dn_ids = [
            Command.clear(),
            Command.create({"dn": "ou=groups,dc=example,dc=test"}),
        ]
        params = directory.action_test_connection()["params"]
        self.assertEqual(params["type"], "warning")
        self.assertIn(
            "No entry matches the search bases and filters", params["message"]
        )

    def test_first_import(self):
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        links = self.links()
        self.assertGreaterEqual(len(links), 18)
        link = self.link_for("user0001")
        self.assertTrue(link.user_id.active)
        self.assertEqual(link.user_id.login, "user0001")
        self.assertEqual(link.user_id.name, "Given1 Surname1")
        self.assertEqual(link.employee_id.user_id, link.user_id)
        self.assertEqual(link.employee_id.job_title, "Engineer")
        self.assertEqual(link.employee_id.department_id.name, "R&D")
        self.assertTrue(link.employee_id.mobile_phone)
        # nested: user0005 is in sales-team ⊂ pbx-operators
        self.assertTrue(
            self.link_for("user0005").user_id.has_group(
                "mango_telephony.group_mango_user"
            )
        )
        self.assertTrue(
            link.user_id.has_group("mango_telephony.group_mango_supervisor")
        )
        self.assertFalse(
            self.link_for("user0004").user_id.has_group(
                "mango_telephony.group_mango_user"
            )
        )
        # PBX: every linked person got a PBX user with a range extension and a SIP account
        pbx = self.pbx_users()
        self.assertEqual(link.pbx_state, "active")
        member = pbx[int(link.pbx_user_id)]
        self.assertEqual(member["extension"], link.extension)
        self.assertTrue(300 <= int(link.extension) <= 399)
        self.assertEqual(str(member["access_role_id"]), "10451")
        self.assertTrue(link.sip_login)
        self.assertEqual(len({rec.extension for rec in links}), len(links))
        # passwords: shown once, then gone
        self.assertEqual(run.secret_count, len(links))
        wizard = (
            self.env["mango.ldap.sip.reveal"]
            .with_context(default_run_id=run.id)
            .new({})
        )
        values = (
            self.env["mango.ldap.sip.reveal"]
            .with_context(default_run_id=run.id)
            .default_get(["run_id", "credentials"])
        )
        self.assertIn(link.sip_login, values["credentials"])
        self.assertTrue(wizard)
        run.invalidate_recordset(["secret_count"])
        self.assertEqual(run.secret_count, 0)
        again = (
            self.env["mango.ldap.sip.reveal"]
            .with_context(default_run_id=run.id)
            .default_get(["credentials"])
        )
        self.assertNotIn(link.sip_login, again["credentials"])
        # a second run changes nothing
        second = self.run_sync()
        self.assertEqual(second.state, "done", second.message)
        self.assertEqual(
            (
                second.created_count,
                second.updated_count,
                second.archived_count,
                second.pbx_count,
            ),
            (0, 0, 0, 0),
        )
        self.assertFalse(
            second.line_ids,
            second.line_ids.mapped(
                lambda line: (line.entry_name, line.action, line.changes_display)
            ),
        )

    def test_preview_changes_nothing(self):
        users_before = self.env["res.users"].search_count([])
        pbx_before = len(self.pbx_users())
        run = self.run_sync(dry_run=True)
        self.assertEqual(run.state, "preview", run.message)
        self.assertEqual(self.env["res.users"].search_count([]), users_before)
        self.assertEqual(len(self.pbx_users()), pbx_before)
        self.assertFalse(self.links())
        creates = run.line_ids.filtered(lambda line: line.action == "create")
        self.assertGreaterEqual(len(creates), 18)
        line = creates.filtered(lambda line: line.entry_name == "Given2 Surname2")
        self.assertIn("User › Login: user0002", line.changes_display)
        self.assertNotIn("user.", line.changes_display)
        self.assertNotIn("employee.", line.changes_display)
        self.assertTrue(run.line_ids.filtered(lambda line: line.action == "pbx_create"))
        self.assertTrue(run.line_ids.filtered(lambda line: line.action == "sip_create"))
        self.assertNotIn(
            "password",
            " ".join(
                run.line_ids.mapped("changes")
                and [c or "" for c in run.line_ids.mapped("changes")]
            ),
        )

    def test_sync_rules(self):
        mappings = self.directory.mapping_ids
        title = mappings.filtered(
            lambda m: m.attribute == "title" and m.target == "employee"
        )
        # user.email feeds the employee's work e-mail through hr's own user sync
        mail = mappings.filtered(lambda m: m.attribute == "mail")
        mobile = mappings.filtered(
            lambda m: m.attribute == "mobile" and m.target == "employee"
        )
        phone = mappings.filtered(lambda m: m.attribute == "telephoneNumber")
        title.rule, mail.rule, mobile.rule, phone.rule = (
            "always",
            "create_only",
            "when_empty",
            "ignore",
        )
        self.run_sync()
        link = self.link_for("user0007")
        employee = link.employee_id
        self.assertNotIn(
            "4951000007", employee.work_phone or "", "ignored mapping wrote"
        )
        original_mobile = employee.mobile_phone
        self.admin.modify(
            user_dn(7),
            title="Lead engineer",
            mail="new.mail@example.test",
            mobile="+7 916 555-00-07",
            telephoneNumber="+7 495 555-00-07",
        )
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(employee.job_title, "Lead engineer")  # always
        self.assertEqual(employee.work_email, "user0007@example.test")  # create only
        self.assertEqual(employee.mobile_phone, original_mobile)  # when empty: kept
        self.assertNotIn("4955550007", employee.work_phone or "")  # ignore
        line = run.line_ids.filtered(
            lambda rec: rec.link_id == link and rec.action == "update"
        )
        self.assertIn(
            "Employee › Job Title: Engineer → Lead engineer", line.changes_display
        )
        employee.mobile_phone = False
        self.run_sync()
        self.assertEqual(employee.mobile_phone, "+79165550007")  # when empty: filled
        # the PBX position follows the title (always)
        self.assertEqual(
            self.pbx_users()[int(link.pbx_user_id)]["position"], "Lead engineer"
        )

    def test_rename_and_move_keep_identity(self):
        self.run_sync()
        link = self.link_for("user0008")
        user, employee, pbx_id = link.user_id, link.employee_id, link.pbx_user_id
        self.admin.modify(user_dn(8), cn="Renamed Eight", displayName="Renamed Eight")
        self.admin.move(user_dn(8), SALES)
        self.addCleanup(self.admin.move, f"uid=user0008,{SALES}", PEOPLE)
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        link.invalidate_recordset()
        self.assertEqual(link.dn.lower(), f"uid=user0008,{SALES}".lower())
        self.assertEqual(link.user_id, user)
        self.assertEqual(link.employee_id, employee)
        self.assertEqual(link.pbx_user_id, pbx_id)
        self.assertEqual(user.name, "Renamed Eight")
        self.assertEqual(self.pbx_users()[int(pbx_id)]["name"], "Renamed Eight")
        self.assertEqual(
            len(self.links().filtered(lambda rec: rec.login == "user0008")), 1
        )

    def test_group_change_updates_roles(self):
        self.run_sync()
        link = self.link_for("user0009")
        user = link.user_id
        supervisor = self.env.ref("mango_telephony.group_mango_supervisor")
        listener = self.env.ref("mango_telephony.group_mango_recording_listener")
        self.assertFalse(user.has_group("mango_telephony.group_mango_supervisor"))
        user[USER_GROUPS] = [
            Command.link(listener.id)
        ]  # granted by hand: never revoked
        self.admin.add_member(f"cn=pbx-supervisors,{GROUPS}", user_dn(9))
        self.addCleanup(
            self.admin.remove_member, f"cn=pbx-supervisors,{GROUPS}", user_dn(9)
        )
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertIn(supervisor, groups_of(user))
        self.assertIn(supervisor, link.grant_ids.group_id)
        self.assertEqual(
            str(self.pbx_users()[int(link.pbx_user_id)]["access_role_id"]), "10451"
        )
        self.admin.remove_member(f"cn=pbx-supervisors,{GROUPS}", user_dn(9))
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertNotIn(supervisor, groups_of(user))
        self.assertIn(listener, groups_of(user))
        self.assertFalse(link.grant_ids.filtered(lambda g: g.group_id == supervisor))

    def test_deletion_archives_and_reserves_extension(self):
        self.directory.departed_pbx_action = "delete"
        self.run_sync()
        link = self.link_for("user0011")
        user, employee, pbx_id, extension = (
            link.user_id,
            link.employee_id,
            link.pbx_user_id,
            link.extension,
        )
        self.admin.delete(user_dn(11))
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertFalse(user.active)
        self.assertFalse(employee.active)
        self.assertEqual(link.state, "departed")
        self.assertNotIn(int(pbx_id), self.pbx_users())
        self.assertEqual(link.extension, extension)
        self.assertTrue(link.reserved_until)
        archive = run.line_ids.filtered(
            lambda rec: rec.action == "archive" and rec.link_id == link
        )
        self.assertEqual(archive.status, "done")
        # nobody else gets the reserved extension while the grace period runs
        self.admin.add(
            f"uid=newcomer,{PEOPLE}",
            ["inetOrgPerson"],
            {
                "uid": "newcomer",
                "cn": "New Comer",
                "sn": "Comer",
                "mail": "newcomer@example.test",
            },
        )
        self.addCleanup(self.admin.delete, f"uid=newcomer,{PEOPLE}")
        self.run_sync()
        newcomer = self.link_for("newcomer")
        self.assertTrue(newcomer.extension)
        self.assertNotEqual(newcomer.extension, extension)

    def test_disable_departed_on_pbx(self):
        self.directory.departed_pbx_action = "disable"
        self.run_sync()
        link = self.link_for("user0012")
        pbx_id = int(link.pbx_user_id)
        self.admin.delete(user_dn(12))
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        member = self.pbx_users()[pbx_id]
        self.assertEqual(link.pbx_state, "disabled")
        self.assertEqual(str(member["access_role_id"]), "3")
        self.assertFalse(
            [s for s in self.pbx_sips().values() if s["user_id"] == pbx_id]
        )
        self.assertEqual(member["extension"], link.extension)

    def test_outage_mid_run_removes_nobody(self):
        self.directory.page_size = (
            5  # several pages, so the server can vanish between two
        )
        self.run_sync()
        linked = self.links()
        server = self.server

        def interrupting(self_sync, callback):
            def on_page(pages, entries):
                callback(pages, entries)
                if pages == 1:
                    server.pause()

            return on_page

        self.addCleanup(server.resume)
        with patch.object(DirectorySync, "_on_page", interrupting):
            run = self.run_sync()
        server.resume()
        self.assertEqual(run.archived_count, 0)
        self.assertIn(run.state, ("partial", "failed"))
        self.assertIn("incomplete", run.message)
        self.assertFalse(linked.filtered(lambda rec: rec.state != "active"))
        self.assertTrue(all(linked.user_id.mapped("active")))
        # the next run completes normally
        after = self.run_sync()
        self.assertEqual(after.state, "done", after.message)

    def test_interrupted_first_import_resumes(self):
        """A first import that stops between two pages leaves no registry rows
        behind; the next run starts its registries from what the first one applied
        (the people of its pages are linked, their logins and numbers taken) and
        ends with everybody once, with distinct logins, extensions and SIP logins."""
        self.directory.page_size = 5
        server = self.server

        def interrupting(self_sync, callback):
            def on_page(pages, entries):
                callback(pages, entries)
                if pages == 2:
                    server.pause()

            return on_page

        self.addCleanup(server.resume)
        with patch.object(DirectorySync, "_on_page", interrupting):
            stopped = self.run_sync()
        server.resume()
        self.assertIn(stopped.state, ("partial", "failed"))
        applied = self.links()
        self.assertTrue(applied)
        self.env.cr.execute(
            "SELECT count(*) FROM mango_ldap_run_registry WHERE run_id = %s",
            [stopped.id],
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)
        before = {link.anchor: (link.login, link.extension) for link in applied}
        after = self.run_sync()
        self.assertEqual(after.state, "done", after.message)
        links = self.links()
        self.assertEqual(len(links), after.entries_seen)
        self.assertEqual(after.created_count, len(links) - len(applied))
        # who was linked keeps login and number; nobody takes them
        for link in links.filtered(lambda rec: rec.anchor in before):
            self.assertEqual((link.login, link.extension), before[link.anchor])
        for field in ("login", "extension", "sip_login"):
            values = [v for v in links.mapped(field) if v]
            self.assertEqual(len(values), len(set(values)), field)
        self.env.cr.execute(
            "SELECT count(*) FROM mango_ldap_run_registry WHERE run_id IN %s",
            [(stopped.id, after.id)],
        )
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_unreachable_directory_fails_cleanly(self):
        self.run_sync()
        self.server.pause()
        self.addCleanup(self.server.resume)
        run = self.run_sync()
        self.server.resume()
        self.assertIn(run.state, ("partial", "failed"))
        self.assertEqual(run.archived_count, 0)
        self.assertFalse(self.links().filtered(lambda rec: rec.state != "active"))

    def test_empty_result_removes_nobody(self):
        self.run_sync()
        base = self.directory.base_dn_ids
        base.dn = "ou=groups,dc=example,dc=test"  # exists, holds no people
        run = self.run_sync()
        self.assertNotEqual(run.state, "failed", run.message)
        self.assertEqual(run.archived_count, 0)
        self.assertFalse(self.links().filtered(lambda rec: rec.state != "active"))

    def test_threshold_hold_and_confirm(self):
        self.run_sync()
        doomed = [13, 14, 16, 17]
        links = self.env["mango.ldap.link"].browse(
            [self.link_for(f"user{i:04d}").id for i in doomed]
        )
        for i in doomed:
            self.admin.delete(user_dn(i))
        run = self.run_sync()
        self.assertEqual(run.state, "waiting", run.message)
        self.assertEqual(run.held_count, 4)
        self.assertTrue(all(links.user_id.mapped("active")))
        held = run.line_ids.filtered(lambda rec: rec.status == "held")
        self.assertEqual(set(held.mapped("anchor")), set(links.mapped("anchor")))
        confirm_action = self.confirm_removals(run)
        confirmed = self.env["mango.ldap.sync.run"].browse(confirm_action["res_id"])
        self.assertEqual(confirmed.state, "done", confirmed.message)
        self.assertEqual(confirmed.archived_count, 4)
        self.assertFalse(
            any(links.user_id.with_context(active_test=False).mapped("active"))
        )
        self.assertEqual(run.state, "done")

    def test_filter_change_holds_removals(self):
        self.run_sync()
        self.directory.user_filter = "(title=Sales manager)"
        self.assertTrue(self.directory.scope_changed)
        run = self.run_sync()
        self.assertEqual(run.state, "waiting", run.message)
        self.assertGreaterEqual(run.held_count, 10)
        self.assertTrue(all(self.links().user_id.mapped("active")))
        run.action_discard_removals()
        self.assertEqual(run.state, "done")
        self.directory.user_filter = False

    def test_extension_collision(self):
        self.directory.extension_policy = "attribute"
        self.directory.extension_attribute = "employeeNumber"  # 1001, 1002, …
        other = self.env["res.users"].create(
            {
                "name": "Local person",
                "login": "local.person",
                "mango_extension": "1003",
            }
        )
        run = self.run_sync()
        # settled (the Odoo user keeps it) and reported: a warning, not an error
        self.assertEqual(run.state, "warning", run.message)
        conflict = run.line_ids.filtered(lambda rec: rec.status == "warning")
        self.assertEqual(len(conflict), 1)
        self.assertIn("1003", conflict.summary)
        self.assertIn("Local person (local.person)", conflict.summary)
        self.assertEqual(conflict.entry_name, "Given3 Surname3")
        self.assertEqual(other.mango_extension, "1003")
        three = self.link_for("user0003")
        self.assertNotEqual(three.extension, "1003")
        self.assertEqual(self.link_for("user0004").extension, "1004")

    def test_pbx_rejection_recorded_and_retried(self):
        self.mango_sim.state.employee_limit = len(self.pbx_users()) + 5
        self.mango_sim.clear_commands()
        run = self.run_sync()
        self.assertEqual(run.state, "partial", run.message)
        rejected = self.links().filtered(lambda rec: rec.pbx_state == "error")
        self.assertTrue(rejected)
        self.assertTrue(all("5228" in rec.pbx_error for rec in rejected))
        # once Mango says the tariff is full, the run stops asking
        creates = self.mango_sim.commands("member/create")
        self.assertEqual(len(creates), 6)
        self.assertEqual([c["result"] for c in creates].count(5228), 1)
        not_sent = rejected.filtered(lambda rec: "Not sent" in rec.pbx_error)
        self.assertEqual(len(not_sent), len(rejected) - 1)
        error_line = run.line_ids.filtered(
            lambda rec: rec.action == "pbx_create" and rec.status == "error"
        )
        self.assertTrue(error_line)
        self.assertFalse(rejected.filtered("pbx_user_id"))
        self.assertTrue(all(rejected.user_id.mapped("active")))  # Odoo side went ahead
        self.mango_sim.state.employee_limit = 500
        retry = self.run_sync()
        self.assertEqual(retry.state, "done", retry.message)
        self.assertFalse(self.links().filtered(lambda rec: rec.pbx_state == "error"))
        self.assertEqual(len(self.links().filtered("pbx_user_id")), len(self.links()))

    def test_extensions_of_pbx_groups_are_never_given(self):
        # the PBX gives 300 and 302, the range's first numbers, to groups
        for number in ("300", "302"):
            self.mango_sim.state._add_seed_group(
                {"name": f"Queue {number}", "extension": number, "operators": []}
            )
        self.mango_sim.clear_commands()
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        extensions = set(self.links().mapped("extension"))
        self.assertFalse(extensions & {"300", "302"})
        self.assertIn("301", extensions)
        refused = [
            c for c in self.mango_sim.commands("member/create") if c["result"] != 1000
        ]
        self.assertFalse(refused)

    def test_pbx_users_only_for_members_of_a_group(self):
        self.directory.pbx_group_dns = f"\n  cn=pbx-operators,{GROUPS}  \n"
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        links = self.links()
        operators = (
            self.env["mango.ldap.grant"]
            .search(
                [
                    ("link_id", "in", links.ids),
                    (
                        "group_id",
                        "=",
                        self.env.ref("mango_telephony.group_mango_user").id,
                    ),
                ]
            )
            .link_id
        )
        self.assertTrue(operators)
        self.assertLess(len(operators), len(links))
        self.assertEqual(links.filtered("pbx_user_id"), operators)
        self.assertTrue(all(links.user_id.mapped("active")))  # Odoo users for all
        # a group the directory does not have changes nobody's PBX user
        self.directory.pbx_group_dns = f"cn=no-such-group,{GROUPS}"
        again = self.run_sync()
        self.assertEqual(links.filtered("pbx_user_id"), operators)
        self.assertFalse(
            again.line_ids.filtered(lambda line: line.action.startswith("pbx"))
        )
        self.assertIn("no-such-group", again.message)
        with self.assertRaises(ValidationError):
            self.directory.pbx_group_dns = "not a DN"

    def test_resume_without_duplicates(self):
        """A PBX user created just before a crash is matched, not created twice."""
        self.run_sync()
        link = self.link_for("user0018")
        pbx_id = link.pbx_user_id
        # as if the transaction that recorded the PBX user had been lost
        link.write({"pbx_user_id": False, "pbx_state": "none", "sip_login": False})
        count = len(self.pbx_users())
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(len(self.pbx_users()), count)
        self.assertEqual(link.pbx_user_id, pbx_id)

    def test_certificate_mismatch_refused(self):
        env = self.server.env
        host, port = host_port(
            env["LDAPS_ALT_URI"]
        )  # 127.0.0.2 is not in the certificate
        directory = self.directory.copy({"name": "Wrong host"})
        directory.server_ids = [
            Command.clear(),
            Command.create({"host": host, "port": port}),
        ]
        directory.ca_certificate = self.ca_pem
        directory.bind_password_input = env["LDAP_BIND_PW"]
        action = directory.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        run = self.run_sync(directory)
        self.assertIn(run.state, ("failed", "partial"))
        self.assertFalse(self.links(directory))
        # a CA that did not sign the server certificate is refused as well
        with open(env["LDAP_WRONG_CA_FILE"], encoding="ascii") as handle:
            wrong_ca = handle.read()
        good_host, good_port = host_port(env["LDAPS_URI"])
        directory.server_ids = [
            Command.clear(),
            Command.create({"host": good_host, "port": good_port}),
        ]
        directory.ca_certificate = wrong_ca
        self.assertEqual(directory.action_test_connection()["params"]["type"], "danger")
        run = self.run_sync(directory)
        self.assertFalse(self.links(directory))

    def test_one_sync_at_a_time(self):
        with self.registry.cursor() as other:
            other.execute(
                "SELECT pg_advisory_lock(%s, %s)",
                (0x6D6C6470 & 0x7FFFFFFF, self.directory.id),
            )
            try:
                with self.assertRaises(UserError):
                    self.run_sync()
            finally:
                other.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    (0x6D6C6470 & 0x7FFFFFFF, self.directory.id),
                )

    def test_delta_sync(self):
        self.run_sync()
        self.assertTrue(self.directory.watermark)
        self.admin.modify(user_dn(19), title="Architect")
        run = self.run_sync(mode="delta")
        self.assertIn(run.state, ("done",), run.message)
        self.assertEqual(self.link_for("user0019").employee_id.job_title, "Architect")
        self.assertLessEqual(run.updated_count, 1)

    def test_changes_only_run_says_why_it_read_everything(self):
        self.run_sync()
        self.directory.user_filter = "(uid=user*)"
        run = self.run_sync(mode="delta")
        self.assertEqual(run.mode, "full")
        self.assertIn("This changes-only run read the whole directory", run.message)
        self.assertIn(
            "the directory settings changed since the last complete run", run.message
        )
        again = self.run_sync()
        self.assertFalse(again.message)

    def test_sign_in_with_directory_password(self):
        self.directory.signin_enabled = True
        config = self.directory.ldap_config_id
        self.assertTrue(config)
        self.run_sync()
        Ldap = self.env["res.company.ldap"]
        conf = next(c for c in Ldap._get_ldap_dicts() if c.get("mango_directory_id"))
        self.assertTrue(Ldap._authenticate(conf, "user0002", "Pw-user0002-1"))
        self.assertFalse(Ldap._authenticate(conf, "user0002", "wrong"))
        # an Odoo user the sync does not own cannot use a directory password
        self.link_for("user0002").state = "departed"
        self.assertFalse(Ldap._authenticate(conf, "user0002", "Pw-user0002-1"))
        self.directory.signin_enabled = False
        self.assertFalse(config.exists())

    def signin_conf(self):
        Ldap = self.env["res.company.ldap"]
        return next(c for c in Ldap._get_ldap_dicts() if c.get("mango_directory_id"))

    def test_sign_in_connects_as_the_sync_does(self):
        """Sign-in takes the sync's way to the directory: past a server that is
        down, StartTLS checked against the directory's CA and host name, the
        check switched off only where the directory says so."""
        env = self.server.env
        self.directory.signin_enabled = True
        self.run_sync()
        Ldap = self.env["res.company.ldap"]
        host, port = host_port(env["LDAP_URI"])
        self.directory.write(
            {
                "transport": "starttls",
                "server_ids": [
                    Command.clear(),
                    Command.create(
                        {"host": "127.0.0.1", "port": free_closed_port(), "sequence": 1}
                    ),
                    Command.create({"host": host, "port": port, "sequence": 2}),
                ],
            }
        )
        conf = self.signin_conf()
        self.assertNotIn("ldap_password", {k for k, v in conf.items() if v})
        self.assertTrue(Ldap._authenticate(conf, "user0003", "Pw-user0003-1"))
        self.assertFalse(Ldap._authenticate(conf, "user0003", "Pw-user0004-1"))
        self.assertFalse(Ldap._authenticate(conf, "user0003", ""))
        # a login that is a filter, not a person, finds nobody
        self.assertFalse(Ldap._authenticate(conf, "user000*", "Pw-user0003-1"))
        # a CA that did not sign the server's certificate: refused, and said so
        with open(env["LDAP_WRONG_CA_FILE"], encoding="ascii") as handle:
            self.directory.ca_certificate = handle.read()
        with self.assertLogs(
            "odoo.addons.mango_ldap.models.res_company_ldap", level="ERROR"
        ) as logged:
            self.assertFalse(Ldap._authenticate(conf, "user0003", "Pw-user0003-1"))
        self.assertIn("LDAP error during sign-in", logged.output[0])
        self.assertIn("certificate", logged.output[0])
        # the administrator chose not to check certificates: neither does sign-in
        self.directory.verify_certificate = False
        self.assertTrue(Ldap._authenticate(conf, "user0003", "Pw-user0003-1"))
        # LDAPS to an address the certificate does not name: refused
        alt_host, alt_port = host_port(env["LDAPS_ALT_URI"])
        self.directory.write(
            {
                "transport": "ldaps",
                "verify_certificate": True,
                "ca_certificate": self.ca_pem,
                "server_ids": [
                    Command.clear(),
                    Command.create({"host": alt_host, "port": alt_port}),
                ],
            }
        )
        with self.assertLogs(
            "odoo.addons.mango_ldap.models.res_company_ldap", level="ERROR"
        ):
            self.assertFalse(Ldap._authenticate(conf, "user0003", "Pw-user0003-1"))

    def test_change_directory_password_at_sign_in(self):
        """A password change from Odoo is made in the directory, over the same
        checked connection, as the person."""
        dn = self.add_person("pwchange", "Password Changer")
        self.admin.modify(dn, userPassword="Old-secret-1")
        self.directory.signin_enabled = True
        self.run_sync()
        Ldap = self.env["res.company.ldap"]
        conf = self.signin_conf()
        self.assertTrue(Ldap._authenticate(conf, "pwchange", "Old-secret-1"))
        self.assertFalse(
            Ldap._change_password(conf, "pwchange", "Wrong-secret", "New-secret-2")
        )
        self.assertTrue(
            Ldap._change_password(conf, "pwchange", "Old-secret-1", "New-secret-2")
        )
        self.assertTrue(Ldap._authenticate(conf, "pwchange", "New-secret-2"))
        self.assertFalse(Ldap._authenticate(conf, "pwchange", "Old-secret-1"))

    def test_run_lines_json(self):
        run = self.run_sync(dry_run=True)
        for line in run.line_ids.filtered("changes"):
            json.loads(line.changes)

    # -- the same extension for two people, and superseded confirmations -------------

    def add_person(self, uid, name, number=None, cleanup=True):
        attrs = {"mail": f"{uid}@example.test", "displayName": name}
        if number:
            attrs["employeeNumber"] = number
        dn = self.admin.add_user(uid, cn=name, sn=name.split()[-1], **attrs)
        if cleanup:
            self.addCleanup(self.admin.delete, dn)
        return dn

    def extensions_from_directory(self):
        """employeeNumber says the extension; the range 300-399 gives the others."""
        self.directory.write(
            {
                "extension_policy": "attribute_or_range",
                "extension_attribute": "employeeNumber",
            }
        )

    @staticmethod
    def warning_lines(run):
        return run.line_ids.filtered(lambda line: line.status == "warning")

    def test_duplicate_extension_drill(self):
        """Two people with the same number: the holder keeps it, the other is
        named on every run, a correction in the directory ends it."""
        self.extensions_from_directory()
        self.add_person("dupholder", "Holder Person", "1601")
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        holder = self.link_for("dupholder")
        pbx_id = int(holder.pbx_user_id)
        self.assertEqual(holder.extension, "1601")

        newcomer_dn = self.add_person("dupnew", "Newcomer Person", "1601")
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        self.assertEqual(run.warning_count, 1)
        self.assertFalse(run.line_ids.filtered(lambda line: line.status == "error"))
        line = self.warning_lines(run)
        self.assertEqual(line.action, "extension")
        self.assertEqual(line.entry_name, "Newcomer Person")
        self.assertEqual(line.dn.lower(), newcomer_dn.lower())
        newcomer = self.link_for("dupnew")
        self.assertEqual(line.link_id, newcomer)
        for words in (
            "1601",
            f"Holder Person (dupholder, uid=dupholder,{PEOPLE})",
            "Newcomer Person (dupnew)",
            "Holder Person keeps it: they already have it in Odoo or on the PBX",
            f"Newcomer Person has extension {newcomer.extension} instead",
        ):
            self.assertIn(words, line.summary)
        self.assertEqual(holder.extension, "1601")
        self.assertEqual(self.pbx_users()[pbx_id]["extension"], "1601")
        self.assertTrue(300 <= int(newcomer.extension) <= 399)
        self.assertEqual(
            self.pbx_users()[int(newcomer.pbx_user_id)]["extension"],
            newcomer.extension,
        )
        number = newcomer.extension
        # worded when read, in the reader's language (the nightly run writes as root)
        for lang, words in (
            ("ru_RU", "Каталог указывает добавочный номер 1601"),
            ("fi_FI", "Hakemisto antaa alanumeron 1601"),
        ):
            self.env["res.lang"]._activate_lang(lang)
            self.assertIn(words, line.with_context(lang=lang).summary)

        # later runs: the same outcome, reported each time, never an error
        for mode in ("full", "delta", "full"):
            again = self.run_sync(mode=mode)
            self.assertEqual(again.state, "warning", again.message)
            line = self.warning_lines(again)
            self.assertEqual(len(line), 1)
            self.assertIn("Holder Person (dupholder", line.summary)
            self.assertIn(f"has extension {number} instead", line.summary)
            self.assertFalse(
                again.line_ids.filtered(lambda rec: rec.status == "error"),
                again.line_ids.mapped("summary"),
            )
            self.assertEqual((holder.extension, newcomer.extension), ("1601", number))
        preview = self.run_sync(dry_run=True)
        self.assertEqual(len(self.warning_lines(preview)), 1)

        # corrected in the directory: the newcomer takes the new number, runs end done
        self.admin.modify(newcomer_dn, employeeNumber="1602")
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(newcomer.extension, "1602")
        self.assertEqual(
            self.pbx_users()[int(newcomer.pbx_user_id)]["extension"], "1602"
        )
        again = self.run_sync()
        self.assertEqual(again.state, "done", again.message)
        self.assertFalse(again.line_ids)

    def test_duplicate_extension_goes_to_its_pbx_user(self):
        """Neither is synced yet: the PBX user who has the number (same e-mail)
        says whose it is, whatever the read order."""
        self.extensions_from_directory()
        dns = {
            uid: self.add_person(uid, name, "1801")
            for uid, name in (("pbxone", "Pbx One"), ("pbxtwo", "Pbx Two"))
        }
        # the PBX user is the one read (and sorted) last
        by_anchor = {self.admin.anchor_of(dn): uid for uid, dn in dns.items()}
        holder_uid = by_anchor[max(by_anchor)]
        rival_uid = by_anchor[min(by_anchor)]
        seeded = self.mango_sim.state._add_seed_user(
            {
                "name": "Внутренний 1801",
                "extension": "1801",
                "email": f"{holder_uid}@example.test",
                "access_role_id": 3,
            }
        )
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        holder, rival = self.link_for(holder_uid), self.link_for(rival_uid)
        self.assertEqual(int(holder.pbx_user_id), seeded["user_id"])
        self.assertEqual(holder.extension, "1801")
        self.assertNotEqual(int(rival.pbx_user_id), seeded["user_id"])
        self.assertTrue(300 <= int(rival.extension) <= 399)
        line = self.warning_lines(run)
        self.assertEqual(line.link_id, rival)
        self.assertIn("the PBX user who has it is theirs", line.summary)

    def test_duplicate_extension_goes_to_the_earlier_entry(self):
        """Nobody holds it yet: the entry created first in the directory gets it."""
        self.extensions_from_directory()
        self.add_person("early", "Early Bird", "1901")
        time.sleep(1.1)  # createTimestamp counts seconds
        self.add_person("late", "Late Comer", "1901")
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        self.assertEqual(self.link_for("early").extension, "1901")
        self.assertNotEqual(self.link_for("late").extension, "1901")
        line = self.warning_lines(run)
        self.assertEqual(line.link_id, self.link_for("late"))
        self.assertIn(
            "Early Bird keeps it: their directory entry was created first",
            line.summary,
        )

    def test_waiting_run_superseded_by_a_later_run(self):
        dns = [
            self.add_person(f"leaver{i}", f"Leaver {i}", cleanup=False)
            for i in range(4)
        ]
        self.run_sync()
        leavers = self.links().filtered(lambda link: link.login.startswith("leaver"))
        self.assertEqual(len(leavers), 4)
        for dn in dns:
            self.admin.delete(dn)
        first = self.run_sync()
        self.assertEqual(first.state, "waiting", first.message)
        second = self.run_sync()
        self.assertEqual(second.state, "waiting", second.message)
        self.assertEqual(second.held_count, 4)
        # the later run holds the same removals: the earlier one is out of date
        self.assertEqual(first.state, "superseded")
        self.assertEqual(first.superseded_by_id, second)
        self.assertFalse(first.line_ids.filtered(lambda line: line.status == "held"))
        dropped = first.line_ids.filtered(lambda line: line.action == "archive")
        self.assertEqual(set(dropped.mapped("status")), {"skipped"})
        self.assertIn(f"Superseded by run #{second.id}", dropped[0].summary)
        self.env["res.lang"]._activate_lang("ru_RU")
        self.assertIn(
            f"Заменено запуском №{second.id}",
            dropped[0].with_context(lang="ru_RU").summary,
        )
        with self.assertRaisesRegex(UserError, f"#{second.id}"):
            first.action_confirm_removals()
        with self.assertRaises(UserError):
            first.action_discard_removals()
        confirmed = self.env["mango.ldap.sync.run"].browse(
            self.confirm_removals(second)["res_id"]
        )
        self.assertEqual(confirmed.state, "done", confirmed.message)
        self.assertEqual(confirmed.archived_count, 4)
        self.assertEqual((first.state, second.state), ("superseded", "done"))
        self.assertFalse(any(leavers.user_id.mapped("active")))
