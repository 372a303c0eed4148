from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from odoo.addons.mango_ldap.sync import DirectorySync
from odoo.addons.mango_telephony.compat.groups import groups_of

from .common import MangoLdapCase, host_port, start_samba_ad

PEOPLE = 300
OUS = ("Sales", "Support", "Engineering")
LEADS = range(1, 21)  # in Leads, nested in Phones
PHONES = range(21, 61)  # directly in Phones


def sam(n):
    return f"d{n:03d}"


def phone(n):
    return str(2000 + n)


@tagged("post_install", "-at_install", "mango_ldap")
class TestSambaAdDrill(MangoLdapCase):
    """The 300-person Active Directory drill on a real Samba AD DC, run by the
    sync as a customer runs it: first import with PBX users, idempotent re-sync
    (full and changes-only), the same ipPhone for two people, renames and moves,
    nested groups, an outage in the middle of a read, an empty search base, a mass
    removal held, superseded and confirmed, and the correction of the directory."""

    @classmethod
    def _start_server(cls):
        return start_samba_ad()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        server = cls.admin = cls.server
        cls.base = server.env["AD_BASE_DN"]
        cls.drill = f"OU=Drill,{cls.base}"
        conn = server.admin()
        try:
            for dn in [cls.drill, f"OU=Empty,{cls.drill}"] + [
                f"OU={ou},{cls.drill}" for ou in OUS
            ]:
                conn.add(
                    dn, ["top", "organizationalUnit"], {"ou": dn[3:].split(",")[0]}
                )
            cls.dns = {}
            realm = server.bind_dn.split("@", 1)[1]
            for n in range(1, PEOPLE + 1):
                dn = f"CN=Drill Person {n:03d},OU={OUS[n % 3]},{cls.drill}"
                conn.add(
                    dn,
                    ["top", "person", "organizationalPerson", "user"],
                    {
                        "sAMAccountName": sam(n),
                        "userPrincipalName": f"{sam(n)}@{realm}",
                        "displayName": f"Drill Person {n:03d}",
                        "givenName": "Drill",
                        "sn": f"Person {n:03d}",
                        "mail": f"{sam(n)}@example.test",
                        "title": "Operator",
                        "department": OUS[n % 3],
                        "ipPhone": phone(n),
                        "userAccountControl": "544",  # no password needed
                    },
                )
                cls.dns[n] = dn
            cls.leads = f"CN=Leads,{cls.drill}"
            cls.phones = f"CN=Phones,{cls.drill}"
            conn.add(
                cls.leads,
                ["top", "group"],
                {
                    "sAMAccountName": "drill-leads",
                    "member": [cls.dns[n] for n in LEADS],
                },
            )
            conn.add(
                cls.phones,
                ["top", "group"],
                {
                    "sAMAccountName": "drill-phones",
                    "member": [cls.leads] + [cls.dns[n] for n in PHONES],
                },
            )
        finally:
            conn.unbind()
        with open(server.env["AD_CA_FILE"], encoding="ascii") as handle:
            ca_pem = handle.read()
        host, port = host_port(server.env["AD_LDAPS_URI"])
        cls.directory = cls.env["mango.ldap.directory"].create(
            {
                "name": "AD drill",
                "directory_type": "active_directory",
                "transport": "ldaps",
                "server_ids": [Command.create({"host": host, "port": port})],
                "ca_certificate": ca_pem,
                "bind_dn": server.env["AD_BIND_DN"],
                "bind_password_input": server.env["AD_BIND_PW"],
                "base_dn_ids": [Command.create({"dn": cls.drill, "scope": "subtree"})],
                "account_id": cls.mango_account.id,
                "page_size": 100,
            }
        )
        cls.directory.action_preset_active_directory()
        cls.directory.action_fetch_pbx_options()
        cls.supervisor = cls.env.ref("mango_telephony.group_mango_supervisor")
        cls.directory.write(
            {
                "role_mapping_ids": [
                    Command.create(
                        {
                            "group_dn": cls.phones,
                            "group_ids": [Command.set(cls.supervisor.ids)],
                        }
                    )
                ]
            }
        )

    def assertRun(self, run, state, **counts):
        self.assertEqual(run.state, state, (run.message, self._problems(run)))
        for name, value in counts.items():
            self.assertEqual(run[f"{name}_count"], value, name)

    @staticmethod
    def _problems(run):
        return [
            (line.entry_name, line.action, line.status, line.summary)
            for line in run.line_ids
            if line.status in ("error", "warning")
        ][:5]

    def active(self):
        return self.links().filtered(lambda link: link.state == "active")

    def test_drill(self):
        # first import: 300 users, employees and PBX users, roles through nesting
        run = self.run_sync()
        self.assertRun(run, "done", created=PEOPLE, error=0)
        links = self.links()
        self.assertEqual(len(links), PEOPLE)
        self.assertEqual(
            len(links.filtered(lambda link: link.pbx_state == "active")), PEOPLE
        )
        self.assertEqual(
            sorted(links.mapped("extension")),
            sorted(phone(n) for n in range(1, PEOPLE + 1)),
        )
        pbx = self.pbx_users()
        self.assertTrue(
            all(
                pbx[int(link.pbx_user_id)]["extension"] == link.extension
                for link in links
            )
        )
        self.assertIn(
            self.supervisor, groups_of(self.link_for(sam(1)).user_id)
        )  # Leads ⊂ Phones
        self.assertIn(self.supervisor, groups_of(self.link_for(sam(30)).user_id))
        self.assertNotIn(self.supervisor, groups_of(self.link_for(sam(100)).user_id))

        # idempotent re-sync, full and changes-only
        for mode in ("full", "delta"):
            again = self.run_sync(mode=mode)
            self.assertRun(again, "done", created=0, updated=0, archived=0, pbx=0)
            self.assertFalse(again.line_ids, self._problems(again))

        # the same ipPhone for two people: the holder keeps it, named on every run
        self.admin.modify(self.dns[250], ipPhone=phone(7))
        for mode in ("full", "delta", "full"):
            run = self.run_sync(mode=mode)
            self.assertRun(run, "warning", error=0, warning=1, pbx=0)
            line = run.line_ids.filtered(lambda rec: rec.status == "warning")
            self.assertEqual(line.entry_name, "Drill Person 250")
            self.assertIn(f"Drill Person 007 ({sam(7)}, {self.dns[7]})", line.summary)
            self.assertIn(f"has extension {phone(250)} instead", line.summary)
            self.assertEqual(self.link_for(sam(7)).extension, phone(7))
            self.assertEqual(self.link_for(sam(250)).extension, phone(250))

        # renames and moves keep people, follow their DNs and reach the PBX
        renamed = range(281, 291)
        for n in renamed:
            self.admin.modify(self.dns[n], displayName=f"Renamed {n}")
            self.dns[n] = self.admin.move(
                self.dns[n], f"OU=Support,{self.drill}", f"CN=Renamed {n}"
            )
        users = {n: self.link_for(sam(n)).user_id for n in renamed}
        run = self.run_sync()
        self.assertRun(run, "warning", error=0, archived=0, updated=len(renamed))
        for n in renamed:
            link = self.link_for(sam(n))
            self.assertEqual(link.user_id, users[n])
            self.assertEqual(link.dn.lower(), self.dns[n].lower())
            self.assertEqual(link.user_id.name, f"Renamed {n}")
            self.assertEqual(
                self.pbx_users()[int(link.pbx_user_id)]["name"], f"Renamed {n}"
            )

        # nested groups: joining Leads grants, leaving revokes (a changes-only run
        # reads everything when a group changed)
        self.admin.add_member(self.leads, self.dns[100])
        run = self.run_sync(mode="delta")
        self.assertEqual(run.mode, "full")
        self.assertIn(self.supervisor, groups_of(self.link_for(sam(100)).user_id))
        self.admin.remove_member(self.leads, self.dns[100])
        self.run_sync(mode="delta")
        self.assertNotIn(self.supervisor, groups_of(self.link_for(sam(100)).user_id))

        # an outage in the middle of the read removes nobody
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
        self.assertIn(run.state, ("partial", "failed"))
        self.assertEqual(run.archived_count, 0)
        self.assertEqual(len(self.active()), PEOPLE)
        self.assertRun(self.run_sync(), "warning", archived=0)

        # an empty search base removes nobody
        base = self.directory.base_dn_ids
        base.dn = f"OU=Empty,{self.drill}"
        run = self.run_sync()
        self.assertNotEqual(run.state, "failed", run.message)
        self.assertEqual(run.archived_count, 0)
        self.assertEqual(len(self.active()), PEOPLE)
        base.dn = self.drill
        run = self.run_sync()
        self.assertEqual(run.archived_count, 0)
        self.assertEqual(len(self.active()), PEOPLE)

        # a mass removal waits; a later run supersedes the wait; confirmed, it applies
        gone = range(201, 241)
        for n in gone:
            self.admin.delete(self.dns[n])
        first = self.run_sync()
        self.assertRun(first, "waiting", archived=0, held=len(gone))
        second = self.run_sync()
        self.assertRun(second, "waiting", held=len(gone))
        self.assertEqual(first.state, "superseded")
        self.assertEqual(first.superseded_by_id, second)
        confirmed = self.env["mango.ldap.sync.run"].browse(
            self.confirm_removals(second)["res_id"]
        )
        self.assertRun(confirmed, "warning", archived=len(gone), error=0)
        self.assertEqual(len(self.active()), PEOPLE - len(gone))
        departed = self.links().filtered(lambda link: link.state == "departed")
        self.assertEqual(len(departed), len(gone))
        self.assertEqual(set(departed.mapped("pbx_state")), {"disabled"})
        self.assertFalse(any(departed.user_id.mapped("active")))

        # the directory corrected: the run ends done, and stays done
        self.admin.modify(self.dns[250], ipPhone=phone(250))
        self.assertRun(self.run_sync(), "done", error=0, warning=0)
        again = self.run_sync()
        self.assertRun(again, "done", created=0, updated=0, archived=0, pbx=0)
        self.assertFalse(again.line_ids)
