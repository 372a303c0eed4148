import time

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import MangoLdapCase, host_port, start_samba_ad

STAFF_OU = "OU=Staff"
USERS = ("anna", "boris", "vera", "gleb")


@tagged("post_install", "-at_install", "mango_ldap")
class TestSambaAdSync(MangoLdapCase):
    """Active Directory behaviour on a real Samba AD DC: objectGUID anchors,
    userAccountControl, nested groups through LDAP_MATCHING_RULE_IN_CHAIN."""

    @classmethod
    def _start_server(cls):
        return start_samba_ad()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = cls.server.env
        cls.base = env["AD_BASE_DN"]
        cls.staff = f"{STAFF_OU},{cls.base}"
        with open(env["AD_CA_FILE"], encoding="ascii") as handle:
            cls.ca_pem = handle.read()
        # The server writes to its directory as the domain's administrator; it
        # created OU=Staff already.
        cls.admin = cls.server
        cls.admin.add(f"CN=Phones,{cls.staff}", ["group"], {"sAMAccountName": "phones"})
        cls.admin.add(
            f"CN=Phone leads,{cls.staff}", ["group"], {"sAMAccountName": "phone-leads"}
        )
        # nested: Phone leads ⊂ Phones
        cls.admin.add_member(f"CN=Phones,{cls.staff}", f"CN=Phone leads,{cls.staff}")
        for number, login in enumerate(USERS, 1):
            cls.admin.add(
                cls.user_dn(login),
                ["top", "person", "organizationalPerson", "user"],
                {
                    "sAMAccountName": login,
                    "userPrincipalName": f"{login}@example.test",
                    "displayName": login.capitalize() + " Testova",
                    "givenName": login.capitalize(),
                    "sn": "Testova",
                    "mail": f"{login}@example.test",
                    "title": "Operator",
                    "department": "Support",
                    "ipPhone": str(500 + number),
                    "unicodePwd": f'"Secret-{login}-1"'.encode("utf-16-le"),
                    "userAccountControl": "512",
                },
            )
        cls.admin.add_member(f"CN=Phone leads,{cls.staff}", cls.user_dn("anna"))
        host, port = host_port(env["AD_LDAPS_URI"])
        cls.directory = cls.env["mango.ldap.directory"].create(
            {
                "name": "Test Samba AD",
                "directory_type": "active_directory",
                "transport": "ldaps",
                "server_ids": [Command.create({"host": host, "port": port})],
                "ca_certificate": cls.ca_pem,
                "bind_dn": env["AD_BIND_DN"],
                "bind_password_input": env["AD_BIND_PW"],
                "base_dn_ids": [Command.create({"dn": cls.staff, "scope": "subtree"})],
                "account_id": cls.mango_account.id,
                "max_removals_percent": 50,
            }
        )
        cls.directory.action_preset_active_directory()
        cls.directory.action_fetch_pbx_options()
        cls.directory.write(
            {
                "role_mapping_ids": [
                    Command.create(
                        {
                            "group_dn": f"CN=Phones,{cls.staff}",
                            "group_ids": [
                                Command.set(
                                    cls.env.ref(
                                        "mango_telephony.group_mango_supervisor"
                                    ).ids
                                )
                            ],
                        }
                    )
                ],
            }
        )

    @classmethod
    def user_dn(cls, login):
        return f"CN={login.capitalize()} Testova,{cls.staff}"

    def test_import_disable_and_reenable(self):
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        links = self.links()
        self.assertEqual(sorted(links.mapped("login")), sorted(USERS))
        anna = self.link_for("anna")
        # objectGUID in its canonical text form
        self.assertRegex(
            anna.anchor,
            r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        )
        self.assertEqual(anna.extension, "501")  # ipPhone
        self.assertEqual(self.pbx_users()[int(anna.pbx_user_id)]["extension"], "501")
        self.assertEqual(anna.user_id.name, "Anna Testova")
        self.assertEqual(anna.employee_id.department_id.name, "Support")
        # nested membership (Phone leads ⊂ Phones) resolved by the DC
        self.assertTrue(
            anna.user_id.has_group("mango_telephony.group_mango_supervisor")
        )
        self.assertFalse(
            self.link_for("boris").user_id.has_group(
                "mango_telephony.group_mango_supervisor"
            )
        )

        again = self.run_sync(dry_run=True)
        self.assertFalse(
            again.line_ids,
            again.line_ids.mapped(
                lambda line: (
                    line.entry_name,
                    line.action,
                    line.changes_display,
                    line.message,
                )
            ),
        )
        # disabled in AD → archived in Odoo, disabled on the PBX
        self.directory.departed_pbx_action = "disable"
        self.admin.modify(self.user_dn("boris"), userAccountControl="514")
        self.addCleanup(
            self.admin.modify, self.user_dn("boris"), userAccountControl="512"
        )
        boris = self.link_for("boris")
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(boris.state, "disabled")
        self.assertFalse(boris.user_id.active)
        self.assertFalse(boris.employee_id.active)
        self.assertEqual(boris.pbx_state, "disabled")
        self.assertEqual(
            str(self.pbx_users()[int(boris.pbx_user_id)]["access_role_id"]), "3"
        )

        # enabled again → the same records come back
        self.admin.modify(self.user_dn("boris"), userAccountControl="512")
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(boris.state, "active")
        self.assertTrue(boris.user_id.active)
        self.assertTrue(boris.employee_id.active)
        self.assertEqual(boris.pbx_state, "active")
        self.assertTrue(boris.sip_login)

    def test_sign_in_over_ldaps_with_stored_ca(self):
        self.directory.signin_enabled = True
        self.run_sync()
        Ldap = self.env["res.company.ldap"]
        conf = next(c for c in Ldap._get_ldap_dicts() if c.get("mango_directory_id"))
        self.assertTrue(Ldap._authenticate(conf, "vera", "Secret-vera-1"))
        self.assertFalse(Ldap._authenticate(conf, "vera", "Secret-vera-2"))
        # a CA that did not sign the DC's certificate: refused
        with open(self.server.env["AD_WRONG_CA_FILE"], encoding="ascii") as handle:
            self.directory.ca_certificate = handle.read()
        with self.assertLogs(
            "odoo.addons.mango_ldap.models.res_company_ldap", level="ERROR"
        ) as logged:
            self.assertFalse(Ldap._authenticate(conf, "vera", "Secret-vera-1"))
        self.assertIn("LDAP error during sign-in", logged.output[0])

    def test_starttls_and_certificate_check(self):
        host, port = host_port(self.server.env["AD_URI"])
        directory = self.directory.copy({"name": "StartTLS"})
        directory.write(
            {
                "transport": "starttls",
                "server_ids": [
                    Command.clear(),
                    Command.create({"host": host, "port": port}),
                ],
                "ca_certificate": self.ca_pem,
                "bind_password_input": self.server.env["AD_BIND_PW"],
            }
        )
        self.assertEqual(
            directory.action_test_connection()["params"]["type"],
            "success",
            directory.connection_message,
        )
        with open(self.server.env["AD_WRONG_CA_FILE"], encoding="ascii") as handle:
            directory.ca_certificate = handle.read()
        self.assertEqual(directory.action_test_connection()["params"]["type"], "danger")

    # -- the same ipPhone for two people (the AD drill), superseded confirmations ----

    def add_person(self, sam, name, ip_phone=None, cleanup=True):
        given, _sep, surname = name.partition(" ")
        attrs = {
            "cn": name,
            "displayName": name,
            "givenName": given,
            "sn": surname or given,
            "mail": f"{sam}@example.test",
        }
        if ip_phone:
            attrs["ipPhone"] = ip_phone
        dn = self.admin.add_user(sam, **attrs)
        if cleanup:
            self.addCleanup(self.admin.delete, dn)
        return dn

    @staticmethod
    def warning_lines(run):
        return run.line_ids.filtered(lambda line: line.status == "warning")

    def test_duplicate_ip_phone_drill(self):
        """A newcomer gets anna's ipPhone: named on the first run and every run
        after, anna keeps her number, the correction in AD ends it."""
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        anna = self.link_for("anna")
        anna_pbx = int(anna.pbx_user_id)
        zoe_dn = self.add_person("zoe", "Zoe Dupont", "501")
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        zoe = self.link_for("zoe")
        line = self.warning_lines(run)
        self.assertEqual(line.link_id, zoe)
        self.assertEqual(line.entry_name, "Zoe Dupont")
        self.assertEqual(line.dn.lower(), zoe_dn.lower())
        for words in (
            "extension 501",
            f"Anna Testova (anna, {self.user_dn('anna')})",
            "Zoe Dupont (zoe)",
            "Anna Testova keeps it",
            f"Zoe Dupont has extension {zoe.extension} instead",
        ):
            self.assertIn(words, line.summary)
        self.assertNotIn("anchor:", line.summary)
        self.assertNotIn("pbx:", line.summary)
        self.assertEqual(anna.extension, "501")
        self.assertEqual(self.pbx_users()[anna_pbx]["extension"], "501")
        self.assertNotEqual(zoe.extension, "501")
        self.assertEqual(
            self.pbx_users()[int(zoe.pbx_user_id)]["extension"], zoe.extension
        )
        number = zoe.extension
        for mode in ("full", "delta"):
            again = self.run_sync(mode=mode)
            self.assertEqual(again.state, "warning", again.message)
            self.assertFalse(again.line_ids.filtered(lambda rec: rec.status == "error"))
            self.assertIn("Anna Testova", self.warning_lines(again).summary)
            self.assertEqual((anna.extension, zoe.extension), ("501", number))
        self.admin.modify(zoe_dn, ipPhone="505")
        run = self.run_sync()
        self.assertEqual(run.state, "done", run.message)
        self.assertEqual(zoe.extension, "505")
        self.assertEqual(self.pbx_users()[int(zoe.pbx_user_id)]["extension"], "505")
        self.assertEqual(self.run_sync().state, "done")

    def test_duplicate_ip_phone_goes_to_its_pbx_user(self):
        dns = {
            sam: self.add_person(sam, name, "601")
            for sam, name in (("ivo", "Ivo Kask"), ("ida", "Ida Kask"))
        }
        # the PBX user with 601 is the person whose objectGUID sorts last
        by_anchor = {self.admin.anchor_of(dn): sam for sam, dn in dns.items()}
        holder_sam, rival_sam = by_anchor[max(by_anchor)], by_anchor[min(by_anchor)]
        seeded = self.mango_sim.state._add_seed_user(
            {
                "name": "Kask",
                "extension": "601",
                "email": f"{holder_sam}@example.test",
                "access_role_id": 3,
            }
        )
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        holder, rival = self.link_for(holder_sam), self.link_for(rival_sam)
        self.assertEqual(int(holder.pbx_user_id), seeded["user_id"])
        self.assertEqual(holder.extension, "601")
        self.assertNotEqual(rival.extension, "601")
        self.assertNotEqual(int(rival.pbx_user_id), seeded["user_id"])
        line = self.warning_lines(run)
        self.assertEqual(line.link_id, rival)
        self.assertIn("the PBX user who has it is theirs", line.summary)

    def test_duplicate_ip_phone_goes_to_the_earlier_entry(self):
        self.add_person("olli", "Olli Early", "602")
        time.sleep(1.1)  # whenCreated counts seconds
        self.add_person("otto", "Otto Late", "602")
        run = self.run_sync()
        self.assertEqual(run.state, "warning", run.message)
        self.assertEqual(self.link_for("olli").extension, "602")
        self.assertNotEqual(self.link_for("otto").extension, "602")
        self.assertIn(
            "Olli Early keeps it: their directory entry was created first",
            self.warning_lines(run).summary,
        )

    def test_waiting_run_superseded_by_a_later_run(self):
        self.directory.max_removals = 2
        dns = [
            self.add_person(f"leaver{i}", f"Leaver {i}", cleanup=False)
            for i in range(3)
        ]
        self.run_sync()
        for dn in dns:
            self.admin.delete(dn)
        first = self.run_sync()
        self.assertEqual(first.state, "waiting", first.message)
        second = self.run_sync()
        self.assertEqual(second.state, "waiting", second.message)
        self.assertEqual(first.state, "superseded")
        self.assertEqual(first.superseded_by_id, second)
        with self.assertRaises(UserError):
            first.action_confirm_removals()
        confirmed = self.env["mango.ldap.sync.run"].browse(
            self.confirm_removals(second)["res_id"]
        )
        self.assertEqual(confirmed.state, "done", confirmed.message)
        self.assertEqual(confirmed.archived_count, 3)
        self.assertEqual(first.state, "superseded")
