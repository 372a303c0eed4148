import datetime
import importlib.util
import ipaddress
import json
import logging
import os
import tempfile
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from urllib3.exceptions import InsecureRequestWarning

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.module import get_module_path
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import Form, TransactionCase, new_test_user, tagged

from odoo.addons.mango_telephony.compat.groups import (
    GROUP_ALL_IMPLIED,
    user_form_headings,
)

from mango_office.client import MangoClient

from .common import (
    MANGO_TEST_API_KEY,
    MANGO_TEST_API_SALT,
    MangoHttpCase,
    MangoSimulatorCase,
    MangoSimulatorMixin,
    free_closed_port,
    keep_request_timeouts,
    mango_load_languages,
)

SECRET_SALT = "s3cr3tsaltneverinthebrowser0001"
SECRET_KEY = "k3ynotforusers0000000000abc"
MANGO_IPS = (
    "81.88.80.132",
    "81.88.80.133",
    "81.88.82.36",
    "81.88.82.44",
    "81.88.82.45",
)

SEED_LINES = {
    "balance": 963592.45,
    "currency": "RUB",
    "lines": [
        {
            "line_id": 501,
            "number": "74951112233",
            "name": "Moscow",
            "comment": "Main",
            "region": "77",
            "schema_id": 1,
            "schema_name": "Office hours",
        },
        {
            "line_id": 502,
            "number": "78005553535",
            "name": "8-800",
            "comment": "",
            "region": "toll-free",
            "schema_id": 1,
            "schema_name": "Office hours",
        },
        {
            "line_id": 503,
            "number": "",
            "name": "trunk-spb",
            "comment": "SIP trunk",
            "region": "sip-uac",
            "schema_id": 2,
            "schema_name": "Trunk",
        },
        {
            "line_id": 504,
            "number": "78125550000",
            "name": "Partner carrier",
            "comment": "",
            "region": "sip",
            "schema_id": 2,
            "schema_name": "Trunk",
        },
    ],
}


def _dump(value):
    return json.dumps(value, default=str, ensure_ascii=False)


def _self_signed_certificate(directory):
    """A certificate for 127.0.0.1 signed by itself, as a test server would have."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile = os.path.join(directory, "sim.crt")
    keyfile = os.path.join(directory, "sim.key")
    with open(certfile, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(keyfile, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    return certfile, keyfile


class MangoAccountCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["mango.account"].search([]).action_archive()
        cls.account = cls.env["mango.account"].create(
            {
                "name": "Main PBX",
                "api_key": SECRET_KEY,
                "api_salt": SECRET_SALT,
            }
        )
        cls.telephony_user = new_test_user(
            cls.env,
            login="mango_settings_user",
            groups="base.group_user,mango_telephony.group_mango_user",
        )
        cls.telephony_admin = new_test_user(
            cls.env,
            login="mango_settings_tadmin",
            groups="base.group_user,mango_telephony.group_mango_admin",
        )
        cls.system_admin = new_test_user(
            cls.env,
            login="mango_settings_sysadmin",
            groups="base.group_user,base.group_system",
        )


@tagged("post_install", "-at_install")
class TestMangoSecrets(MangoAccountCase):
    def _form_spec(self, user):
        views = self.env["mango.account"].with_user(user).get_views([(False, "form")])
        model = views["models"]["mango.account"]
        fields = model.get("fields", model)
        return views["views"]["form"]["arch"], {name: {} for name in fields}

    def test_groups_hierarchy(self):
        admin_group = self.env.ref("mango_telephony.group_mango_admin")
        implied = admin_group[GROUP_ALL_IMPLIED]
        self.assertIn(self.env.ref("mango_telephony.group_mango_supervisor"), implied)
        self.assertIn(self.env.ref("mango_telephony.group_mango_user"), implied)
        self.assertIn(
            self.env.ref("mango_telephony.group_mango_recording_listener"), implied
        )
        self.assertIn(admin_group, self.env.ref("base.group_system")[GROUP_ALL_IMPLIED])
        self.assertTrue(
            self.system_admin.has_group("mango_telephony.group_mango_admin")
        )
        self.assertFalse(
            self.telephony_user.has_group(
                "mango_telephony.group_mango_recording_listener"
            )
        )
        # The user form offers the roles as one choice and recordings as another.
        kinds = user_form_headings(self.env)
        kind, groups = kinds["mango_telephony.module_category_mango_telephony_roles"]
        self.assertEqual(kind, "selection")
        self.assertEqual(
            groups.mapped(lambda group: group.get_external_id()[group.id]),
            [
                "mango_telephony.group_mango_user",
                "mango_telephony.group_mango_supervisor",
                "mango_telephony.group_mango_admin",
            ],
        )
        self.assertIn(
            "mango_telephony.module_category_mango_telephony_recordings", kinds
        )

    def test_telephony_user_cannot_read_secrets(self):
        for user in (self.telephony_user, self.telephony_admin):
            account = self.account.with_user(user)
            self.assertEqual(account.name, "Main PBX")
            for field_name in (
                "api_key",
                "api_salt",
                "api_key_input",
                "api_salt_input",
            ):
                with self.assertRaises(
                    AccessError, msg=f"{user.login} read {field_name}"
                ):
                    account.read([field_name])
                with self.assertRaises(AccessError):
                    account.web_read({field_name: {}})
            self.assertNotIn("api_salt", account.fields_get())
            self.assertNotIn("api_key", account.fields_get())
            self.assertTrue(account.credentials_set)

            arch, spec = self._form_spec(user)
            self.assertNotIn("api_salt", arch)
            self.assertNotIn("api_key", spec)
            self.assertNotIn("api_salt", spec)
            self.assertNotIn("api_salt_input", spec)
            result = account.web_read(spec)
            self.assertNotIn(SECRET_SALT, _dump(result))
            self.assertNotIn(SECRET_KEY, _dump(result))

    def test_telephony_user_cannot_change_the_account(self):
        with self.assertRaises(AccessError):
            self.account.with_user(self.telephony_user).write({"name": "Hijacked"})
        with self.assertRaises(AccessError):
            self.account.with_user(self.telephony_user).action_mango_test_connection()
        # A telephony administrator manages the account but not its secrets.
        self.account.with_user(self.telephony_admin).write(
            {"recording_storage": "cloud_email"}
        )
        with self.assertRaises(AccessError):
            self.account.with_user(self.telephony_admin).write(
                {"api_salt_input": "other"}
            )
        self.assertEqual(self.account.sudo().api_salt, SECRET_SALT)

    def test_admin_form_never_receives_the_salt(self):
        account = self.account.with_user(self.system_admin)
        arch, spec = self._form_spec(self.system_admin)
        self.assertIn("api_salt_input", spec)
        self.assertNotIn('name="api_salt"', arch)
        self.assertNotIn('name="api_key"', arch)

        read = account.web_read(spec)
        self.assertNotIn(SECRET_SALT, _dump(read))
        self.assertNotIn(SECRET_KEY, _dump(read))
        self.assertFalse(read[0]["api_salt_input"])
        self.assertTrue(read[0]["credentials_set"])
        self.assertEqual(read[0]["api_key_hint"], "••••••••0abc")

        new_salt = "n3wsaltjustsaved0000000000000002"
        saved = account.web_save({"api_salt_input": f"  {new_salt}\n"}, spec)
        self.assertNotIn(new_salt, _dump(saved))
        self.assertFalse(saved[0]["api_salt_input"])
        self.assertEqual(self.account.sudo().api_salt, new_salt)

        values = dict(saved[0], name="Renamed")
        values.pop("id")
        onchange = account.onchange(values, ["name"], spec)
        self.assertNotIn(new_salt, _dump(onchange))

        # A new record's defaults carry nothing secret either.
        defaults = (
            self.env["mango.account"]
            .with_user(self.system_admin)
            .onchange({}, [], spec)
        )
        self.assertNotIn(new_salt, _dump(defaults))

        # The change is traced in the chatter without the value.
        note = self.account.message_ids[:1]
        self.assertIn("API salt", note.body)
        self.assertNotIn(new_salt, note.body)

    def test_empty_input_keeps_the_saved_secret(self):
        self.account.write(
            {"api_key_input": "", "api_salt_input": False, "name": "Kept"}
        )
        self.assertEqual(self.account.sudo().api_key, SECRET_KEY)
        self.assertEqual(self.account.sudo().api_salt, SECRET_SALT)
        with self.assertRaises(ValidationError):
            self.account.write({"api_salt_input": "two words"})

    def test_forget_credentials(self):
        with self.assertRaises(AccessError):
            self.account.with_user(
                self.telephony_admin
            ).action_mango_clear_credentials()
        self.assertTrue(self.account.credentials_set)
        self.account.action_mango_clear_credentials()
        self.assertFalse(self.account.sudo().api_key)
        self.assertFalse(self.account.sudo().api_salt)
        self.assertFalse(self.account.credentials_set)
        with self.assertRaises(UserError):
            self.account._mango_client()

    def test_client_boundary(self):
        self.account.write(
            {
                "api_base_url": "https://pbx.example.test/vpbx/",
                "verify_ssl": False,
                "request_timeout": 7,
            }
        )
        # Any telephony user's action may need the client without seeing the secrets.
        client = self.account.with_user(self.telephony_user)._mango_client()
        self.assertIsInstance(client, MangoClient)
        self.assertEqual(client.base_url, "https://pbx.example.test/vpbx")
        self.assertFalse(client.verify)
        self.assertEqual(client.timeout, 7)
        self.assertEqual(client.api_key, SECRET_KEY)
        self.assertNotIn(SECRET_SALT, repr(client))

    def test_neutralize_forgets_credentials(self):
        for query in get_neutralization_queries(["mango_telephony"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        account = self.account.sudo().with_context(active_test=False)
        self.assertFalse(account.active)
        self.assertFalse(account.api_key)
        self.assertFalse(account.api_salt)


@tagged("post_install", "-at_install")
class TestMangoAccountRules(MangoAccountCase):
    def test_one_active_account_per_company(self):
        with self.assertRaises(ValidationError):
            self.env["mango.account"].create({"name": "Second"})
        other_company = self.env["res.company"].create({"name": "Mango branch"})
        branch = self.env["mango.account"].create(
            {"name": "Branch PBX", "company_id": other_company.id}
        )
        self.assertEqual(
            self.env["mango.account"]._mango_account_for_company(other_company), branch
        )
        self.assertEqual(
            self.env["mango.account"]._mango_account_for_company(), self.account
        )
        # Replacing an account: archive the old one first.
        self.account.action_archive()
        replacement = self.env["mango.account"].create({"name": "New PBX"})
        self.assertEqual(
            self.env["mango.account"]._mango_account_for_company(), replacement
        )
        with self.assertRaises(ValidationError):
            self.account.action_unarchive()

    def test_api_key_identifies_one_account(self):
        other_company = self.env["res.company"].create({"name": "Mango twin"})
        with self.assertRaises(ValidationError):
            self.env["mango.account"].create(
                {"name": "Twin", "company_id": other_company.id, "api_key": SECRET_KEY}
            )
        Account = self.env["mango.account"]
        self.assertEqual(Account._mango_account_from_api_key(SECRET_KEY), self.account)
        self.assertFalse(Account._mango_account_from_api_key("unknown"))
        self.assertFalse(Account._mango_account_from_api_key(""))

    def test_api_address_and_timeout_checked(self):
        for url in (
            "app.mango-office.ru/vpbx",
            "ftp://app.mango-office.ru",
            "https://",
        ):
            with self.assertRaises(ValidationError, msg=url):
                self.account.write({"api_base_url": url})
        with self.assertRaises(ValidationError):
            self.account.write({"request_timeout": 0})
        self.account.write({"api_base_url": " https://app.mango-office.ru/vpbx/ "})
        self.assertEqual(self.account.api_base_url, "https://app.mango-office.ru/vpbx")

    def test_default_allowlist_is_mangos(self):
        account = self.env["mango.account"].new({})
        self.assertEqual(account.ip_filter_mode, "list")
        self.assertEqual(account.allowed_ips.split(), list(MANGO_IPS))
        for address in MANGO_IPS:
            self.assertTrue(self.account._mango_ip_allowed(address), address)
        for address in ("127.0.0.1", "81.88.80.134", "10.0.0.1", "", None, "not an ip"):
            self.assertFalse(self.account._mango_ip_allowed(address), address)
        self.assertTrue(self.account._mango_ip_allowed("::ffff:81.88.82.44"))

    def test_allowlist_syntax(self):
        self.account.allowed_ips = (
            "81.88.80.132, 81.88.82.0/24; 10.1.1.10-10.1.1.20\n"
            "# office\n192.168.7.*  2001:db8::/32"
        )
        allowed = (
            "81.88.80.132",
            "81.88.82.200",
            "10.1.1.15",
            "192.168.7.254",
            "2001:db8::5",
        )
        denied = ("81.88.80.133", "10.1.1.21", "192.168.8.1", "2001:db9::1")
        for address in allowed:
            self.assertTrue(self.account._mango_ip_allowed(address), address)
        for address in denied:
            self.assertFalse(self.account._mango_ip_allowed(address), address)
        self.account.ip_filter_mode = "any"
        for address in denied:
            self.assertTrue(self.account._mango_ip_allowed(address), address)

    def test_allowlist_errors_name_the_entry(self):
        for bad in (
            "81.88.80.300",
            "81.88.82.0/33",
            "10.0.0.20-10.0.0.10",
            "10.0.0.1-2001:db8::1",
            "81.*.80.1",
            "mango.office",
        ):
            with self.assertRaises(ValidationError) as caught:
                self.account.write({"allowed_ips": f"81.88.80.132\n{bad}"})
            self.assertIn(bad, str(caught.exception))
        with self.assertRaises(ValidationError):
            self.account.write(
                {"ip_filter_mode": "list", "allowed_ips": "  # nothing\n"}
            )
        # With free access an empty list is fine.
        self.account.write({"ip_filter_mode": "any", "allowed_ips": False})
        self.assertTrue(self.account._mango_ip_allowed("203.0.113.9"))

    def test_webhook_address(self):
        parameters = self.env["ir.config_parameter"].sudo()
        parameters.set_param("web.base.url", "https://odoo.example.com/")
        self.account.invalidate_recordset(["webhook_base_url", "webhook_url_warning"])
        self.assertEqual(
            self.account.webhook_base_url, "https://odoo.example.com/mango"
        )
        self.assertFalse(self.account.webhook_url_warning)
        parameters.set_param("web.base.url", "http://localhost:8069")
        self.account.invalidate_recordset(["webhook_base_url", "webhook_url_warning"])
        self.assertEqual(self.account.webhook_base_url, "http://localhost:8069/mango")
        self.assertIn("not reachable", self.account.webhook_url_warning)
        parameters.set_param("web.base.url", "http://odoo.example.com")
        self.account.invalidate_recordset(["webhook_base_url", "webhook_url_warning"])
        self.assertIn("HTTPS", self.account.webhook_url_warning)

    def test_default_line_must_place_calls(self):
        Line = self.env["mango.line"]
        usable = Line.create(
            {
                "account_id": self.account.id,
                "line_id": "1",
                "number": "74950001122",
                "region": "77",
            }
        )
        toll_free = Line.create(
            {
                "account_id": self.account.id,
                "line_id": "2",
                "number": "78001112233",
                "region": "77",
            }
        )
        passive = Line.create(
            {
                "account_id": self.account.id,
                "line_id": "3",
                "name": "carrier",
                "region": "sip",
            }
        )
        self.assertTrue(usable.usable_outgoing)
        self.assertFalse(toll_free.usable_outgoing)
        self.assertFalse(passive.usable_outgoing)
        self.assertEqual(usable.display_name, "+74950001122")
        self.account.default_line_id = usable
        self.assertEqual(self.account.default_line_number, "74950001122")
        for line in (toll_free, passive):
            with self.assertRaises(ValidationError):
                self.account.default_line_id = line
        # An administrator who knows better can allow a line by hand.
        passive.usable_outgoing = True
        self.account.default_line_id = passive
        self.assertEqual(self.account.default_line_number, "carrier")

        other_company = self.env["res.company"].create({"name": "Line elsewhere"})
        other = self.env["mango.account"].create(
            {"name": "Elsewhere", "company_id": other_company.id}
        )
        foreign = Line.create(
            {
                "account_id": other.id,
                "line_id": "9",
                "number": "74950009999",
                "region": "77",
            }
        )
        with self.assertRaises(ValidationError):
            self.account.default_line_id = foreign


@tagged("post_install", "-at_install")
class TestMangoSettingsForm(MangoAccountCase):
    def test_create_account_from_settings(self):
        self.account.action_archive()
        settings = self.env["res.config.settings"].create({})
        self.assertFalse(settings.mango_account_id)
        action = settings.action_mango_create_account()
        self.assertEqual(action["tag"], "reload")
        account = self.env["mango.account"]._mango_account_for_company()
        self.assertTrue(account)
        self.assertEqual(
            self.env["res.config.settings"].create({}).mango_account_id, account
        )
        # Pressing it twice does not create a second account.
        self.env["res.config.settings"].create({}).action_mango_create_account()
        self.assertEqual(
            self.env["mango.account"].search_count(
                [("company_id", "=", self.env.company.id)]
            ),
            1,
        )

    def test_settings_save_and_restore(self):
        line = self.env["mango.line"].create(
            {
                "account_id": self.account.id,
                "line_id": "11",
                "number": "74951230000",
                "region": "77",
            }
        )
        new_key = "f0rmkeysavedfromsettings00"
        new_salt = "f0rmsaltsavedfromsettings0000000"
        with Form(self.env["res.config.settings"]) as form:
            form.mango_api_base_url = "https://pbx.example.test/vpbx"
            form.mango_api_key_input = new_key
            form.mango_api_salt_input = new_salt
            form.mango_verify_ssl = False
            form.mango_ip_filter_mode = "list"
            form.mango_allowed_ips = "81.88.80.132\n10.0.0.0/8"
            form.mango_default_line_id = line
            form.mango_recording_links_allowed = True
            form.mango_recording_storage = "cloud_email"
        form.record.execute()

        account = self.account.sudo()
        self.assertEqual(account.api_base_url, "https://pbx.example.test/vpbx")
        self.assertEqual(account.api_key, new_key)
        self.assertEqual(account.api_salt, new_salt)
        self.assertFalse(account.verify_ssl)
        self.assertEqual(account.allowed_ips, "81.88.80.132\n10.0.0.0/8")
        self.assertEqual(account.default_line_id, line)
        self.assertEqual(account.default_line_number, "74951230000")
        self.assertTrue(account.recording_links_allowed)
        self.assertEqual(account.recording_storage, "cloud_email")

        # Opening the settings again shows what was saved, except the secrets.
        restored = Form(self.env["res.config.settings"])
        self.assertEqual(restored.mango_api_base_url, "https://pbx.example.test/vpbx")
        self.assertFalse(restored.mango_verify_ssl)
        self.assertEqual(restored.mango_default_line_id, line)
        self.assertEqual(restored.mango_recording_storage, "cloud_email")
        self.assertTrue(restored.mango_credentials_set)
        self.assertFalse(restored.mango_api_key_input)
        self.assertFalse(restored.mango_api_salt_input)
        self.assertTrue(restored.mango_webhook_base_url.endswith("/mango"))

        # Saving again without touching the secrets keeps them.
        restored.mango_recording_storage = "cloud"
        restored.save().execute()
        self.assertEqual(account.api_salt, new_salt)
        self.assertEqual(account.api_key, new_key)
        self.assertEqual(account.recording_storage, "cloud")

    def test_settings_never_carry_the_salt(self):
        Settings = self.env["res.config.settings"].with_user(self.system_admin)
        views = Settings.get_views([(False, "form")])
        self.assertIn("mango_api_salt_input", views["views"]["form"]["arch"])
        model = views["models"]["res.config.settings"]
        spec = {name: {} for name in model.get("fields", model)}
        defaults = Settings.onchange({}, [], spec)
        self.assertNotIn(SECRET_SALT, _dump(defaults))
        self.assertNotIn(SECRET_KEY, _dump(defaults))
        saved = Settings.web_save({"mango_recording_storage": "cloud_email"}, spec)
        self.assertNotIn(SECRET_SALT, _dump(saved))
        # Saving a new salt from the settings does not echo it back either.
        new_salt = "settingssaltnotechoed00000000003"
        saved = Settings.web_save({"mango_api_salt_input": new_salt}, spec)
        self.assertNotIn(new_salt, _dump(saved))
        self.assertEqual(self.account.sudo().api_salt, new_salt)
        self.assertEqual(self.account.sudo().api_key, SECRET_KEY)

    def test_saving_unchanged_settings_keeps_the_connection_status(self):
        self.account.sudo().connection_state = "ok"
        self.env["res.config.settings"].create({}).execute()
        self.assertEqual(self.account.connection_state, "ok")
        settings = self.env["res.config.settings"].create({})
        settings.mango_api_salt_input = SECRET_SALT
        settings.execute()
        self.assertEqual(self.account.connection_state, "ok")
        settings = self.env["res.config.settings"].create({})
        settings.mango_api_base_url = "https://other.example.test/vpbx"
        settings.execute()
        self.assertEqual(self.account.connection_state, "unknown")

    def test_settings_follow_the_company(self):
        other_company = self.env["res.company"].create(
            {"name": "Mango settings branch"}
        )
        self.env.user.company_ids |= other_company
        branch = self.env["mango.account"].create(
            {
                "name": "Branch",
                "company_id": other_company.id,
                "recording_storage": "cloud_email",
            }
        )
        here = self.env["res.config.settings"].create({})
        there = self.env["res.config.settings"].with_company(other_company).create({})
        self.assertEqual(here.mango_account_id, self.account)
        self.assertEqual(there.mango_account_id, branch)
        self.assertEqual(there.mango_recording_storage, "cloud_email")
        there.mango_recording_links_allowed = True
        there.execute()
        self.assertTrue(branch.recording_links_allowed)
        self.assertFalse(self.account.recording_links_allowed)


@tagged("post_install", "-at_install")
class TestMangoConnection(MangoSimulatorCase):
    """ "Test connection" and "Refresh lines" against the simulated Mango."""

    mango_seed = SEED_LINES

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()

    def _notification(self, action):
        self.assertEqual(action["type"], "ir.actions.client")
        self.assertEqual(action["tag"], "display_notification")
        return action["params"]

    def test_connection_success(self):
        params = self._notification(self.mango_account.action_mango_test_connection())
        self.assertEqual(params["type"], "success")
        self.assertEqual(
            params["message"], "Connection to the server was established successfully"
        )
        account = self.mango_account
        self.assertEqual(account.connection_state, "ok")
        self.assertAlmostEqual(account.balance, 963592.45, places=2)
        self.assertEqual(account.balance_currency, "RUB")
        self.assertEqual(
            [c["method"] for c in self.mango_sim.commands()],
            ["account/balance", "incominglines"],
        )
        self.assertEqual(len(account.line_ids), 4)

    def test_connection_from_settings(self):
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.mango_account_id, self.mango_account)
        params = self._notification(settings.action_mango_test_connection())
        self.assertEqual(params["type"], "success")
        self.assertEqual(settings.mango_connection_state, "ok")

    def test_bad_salt(self):
        self.mango_account.sudo().api_salt = "wrongsaltwrongsaltwrongsalt00000"
        with self.assertLogs("mango_office", "WARNING"):
            params = self._notification(
                self.mango_account.action_mango_test_connection()
            )
        self.assertEqual(params["type"], "danger")
        self.assertIn(
            "Mango refused the signature (3102): check the salt", params["message"]
        )
        self.assertEqual(self.mango_account.connection_state, "failed")
        self.assertEqual(self.mango_account.connection_message, params["message"])

    def test_last_check_is_worded_in_the_readers_language(self):
        """The outcome is kept, not the sentence: a Finnish admin presses the
        button, a Russian one reads the result in Russian."""
        mango_load_languages(self.env)
        self.mango_account.sudo().api_salt = "wrongsaltwrongsaltwrongsalt00000"
        finnish = self.mango_account.with_context(lang="fi_FI")
        with self.assertLogs("mango_office", "WARNING"):
            params = self._notification(finnish.action_mango_test_connection())
        self.assertEqual(
            params["message"],
            "Mango hylkäsi allekirjoituksen (3102): tarkista allekirjoitusavain (salt).",
        )
        self.env.invalidate_all()
        account = self.mango_account
        self.assertEqual(
            account.with_context(lang="ru_RU").connection_message,
            "Mango отклонил подпись (3102): проверьте ключ для создания подписи.",
        )
        self.assertEqual(
            account.with_context(lang="en_US").connection_message,
            "Mango refused the signature (3102): check the salt.",
        )
        self.assertEqual(account.connection_result, "bad_signature")
        settings = self.env["res.config.settings"].with_context(lang="ru_RU").create({})
        self.assertEqual(
            settings.mango_connection_message,
            "Mango отклонил подпись (3102): проверьте ключ для создания подписи.",
        )
        # A changed salt makes the outcome stale: nothing is said about it.
        account.sudo().api_salt = MANGO_TEST_API_SALT
        self.assertEqual(account.connection_state, "unknown")
        self.assertFalse(account.connection_message)

    def test_unreachable_details_are_kept_in_no_language(self):
        account = self.mango_create_account(
            self.mango_sim, api_base_url=f"http://127.0.0.1:{free_closed_port()}/vpbx"
        )
        account.action_mango_test_connection()
        self.assertEqual(account.connection_result, "unreachable")
        self.assertEqual(
            account.connection_result_params,
            {"url": account.api_base_url, "reason": "Connection refused"},
        )
        self.assertIn(account.api_base_url, account.connection_message)

    def test_bad_key(self):
        self.mango_account.sudo().api_key = "unknownkeyunknownkey0000000"
        with self.assertLogs("mango_office", "WARNING"):
            params = self._notification(
                self.mango_account.action_mango_test_connection()
            )
        self.assertEqual(params["type"], "danger")
        self.assertIn("(3105): check the key", params["message"])

    def test_lockout_after_a_second_invalid_request(self):
        # Mango allows one invalid request per two minutes; the second locks the API.
        simulator = self.mango_start_simulator()
        account = self.mango_create_account(
            simulator, api_salt="wrongsaltwrongsaltwrongsalt00000"
        )
        with self.assertLogs("mango_office", "WARNING"):
            first = self._notification(account.action_mango_test_connection())
        self.assertIn("3102", first["message"])
        second = self._notification(account.action_mango_test_connection())
        self.assertEqual(second["type"], "danger")
        self.assertIn("HTTP 401", second["message"])
        self.assertIn("two minutes", second["message"])

    def test_secrets_stay_out_of_the_logs(self):
        self.mango_account.sudo().api_salt = "wrongsaltwrongsaltwrongsalt00000"
        with self.assertLogs(level=logging.DEBUG) as logs:
            self.mango_account.action_mango_test_connection()
        text = "\n".join(logs.output)
        self.assertIn("3102", text)
        self.assertNotIn("wrongsaltwrongsaltwrongsalt00000", text)
        self.assertNotIn(MANGO_TEST_API_KEY, text)

    def test_missing_credentials_send_nothing(self):
        self.mango_account.action_mango_clear_credentials()
        params = self._notification(self.mango_account.action_mango_test_connection())
        self.assertEqual(params["type"], "warning")
        self.assertIn("API key and salt", params["message"])
        self.assertEqual(self.mango_sim.commands(), [])
        with self.assertRaises(UserError):
            self.mango_account.action_mango_refresh_lines()

    def test_unreachable_server(self):
        port = free_closed_port()
        self.mango_account.api_base_url = f"http://127.0.0.1:{port}/vpbx"
        params = self._notification(self.mango_account.action_mango_test_connection())
        self.assertEqual(params["type"], "danger")
        self.assertIn(
            f"http://127.0.0.1:{port}/vpbx cannot be reached (Connection refused)",
            params["message"],
        )
        self.assertEqual(self.mango_account.connection_state, "failed")

    def test_server_too_slow(self):
        keep_request_timeouts(self)
        self.mango_account.request_timeout = 1
        self.mango_sim.add_fault("timeout", seconds=3, methods=["account/balance"])
        params = self._notification(self.mango_account.action_mango_test_connection())
        self.assertEqual(params["type"], "danger")
        self.assertIn("no answer within 1 seconds", params["message"])

    def test_certificate_checked(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        certfile, keyfile = _self_signed_certificate(directory.name)
        simulator = self.mango_start_simulator(certfile=certfile, keyfile=keyfile)
        self.assertTrue(simulator.base_url.startswith("https://"))
        account = self.mango_create_account(simulator)
        self.assertTrue(account.verify_ssl)
        params = self._notification(account.action_mango_test_connection())
        self.assertEqual(params["type"], "danger")
        self.assertIn(
            "could not be verified (self-signed certificate)", params["message"]
        )
        # A test server with a self-signed certificate works once the check is off.
        account.verify_ssl = False
        with warnings.catch_warnings():
            # urllib3 warns on every unverified request, which is the point here.
            warnings.simplefilter("ignore", InsecureRequestWarning)
            params = self._notification(account.action_mango_test_connection())
        self.assertEqual(params["type"], "success")

    def test_refresh_lines(self):
        account = self.mango_account
        params = self._notification(account.action_mango_refresh_lines())
        self.assertEqual(params["type"], "success")
        self.assertIn("4 new", params["message"])
        lines = {line.line_id: line for line in account.line_ids}
        self.assertEqual(sorted(lines), ["501", "502", "503", "504"])
        self.assertEqual(lines["501"].number, "74951112233")
        self.assertEqual(lines["501"].schema_name, "Office hours")
        self.assertEqual(
            {line_id for line_id, line in lines.items() if line.usable_outgoing},
            {"501", "503"},
        )
        usable = self.env["mango.line"].search(
            [("account_id", "=", account.id), ("usable_outgoing", "=", True)]
        )
        self.assertEqual(usable, lines["501"] | lines["503"])
        account.default_line_id = lines["503"]
        self.assertEqual(account.default_line_number, "trunk-spb")

        # Mango renames one line and drops another: Odoo follows without losing history.
        seed = json.loads(json.dumps(SEED_LINES))
        seed["lines"][0]["name"] = "Moscow, sales"
        del seed["lines"][2]
        self.mango_sim_seed(seed)
        params = self._notification(account.action_mango_refresh_lines())
        self.assertIn("1 updated", params["message"])
        self.assertIn("1 archived", params["message"])
        self.assertEqual(lines["501"].name, "Moscow, sales")
        self.assertFalse(lines["503"].active)
        self.assertFalse(account.default_line_id)
        self.assertEqual(len(account.line_ids), 3)

        # A line coming back is reactivated, not duplicated.
        self.mango_sim_seed(SEED_LINES)
        account.action_mango_refresh_lines()
        self.assertTrue(lines["503"].active)
        self.assertEqual(
            self.env["mango.line"]
            .with_context(active_test=False)
            .search_count([("account_id", "=", account.id)]),
            4,
        )


@tagged("post_install", "-at_install")
class TestMangoMixinStandalone(MangoSimulatorMixin, TransactionCase):
    """The mixin works for cases that need their own setup order."""

    def test_own_simulator_and_account(self):
        simulator = self.mango_start_simulator(api_key="mixinkey", api_salt="mixinsalt")
        account = self.mango_create_account(
            simulator, api_key="mixinkey", api_salt="mixinsalt"
        )
        self.assertEqual(account.api_base_url, simulator.base_url)
        self.assertEqual(account._mango_client().balance()["result"], 1000)
        self.assertEqual(MANGO_TEST_API_SALT, self.mango_api_salt)


@tagged("post_install", "-at_install")
class TestMangoSettingsTour(MangoSimulatorMixin, MangoHttpCase):
    def test_settings_page_in_the_browser(self):
        # The tour types this salt; the simulator only accepts requests signed with it.
        salt = "tourSaltTypedInTheSettings000004"
        simulator = self.mango_start_simulator(api_salt=salt)
        account = self.mango_create_account(simulator, api_salt=False)
        self.assertFalse(account.credentials_set)
        self.start_tour("/odoo", "mango_telephony_settings_tour", login="admin")
        self.env.invalidate_all()
        self.assertEqual(account.sudo().api_salt, salt)
        self.assertEqual(account.sudo().api_key, MANGO_TEST_API_KEY)
        self.assertEqual(account.connection_state, "ok")


@tagged("post_install", "-at_install")
class TestConnectionOutcomeMigration(MangoAccountCase):
    """1.1.0: stored sentences become codes the reader's language words."""

    def _migrate(self, version="18.0.1.0.0"):
        path = os.path.join(
            get_module_path("mango_telephony"),
            "migrations",
            "1.1.0",
            "post-migrate.py",
        )
        spec = importlib.util.spec_from_file_location("mango_migration_1_1", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(self.env.cr, version)
        self.env.invalidate_all()

    def test_stored_sentences_become_codes(self):
        cr = self.env.cr
        # The column as 18.0.1.0.0 had it (the current code no longer stores it).
        cr.execute("ALTER TABLE mango_account ADD COLUMN connection_message varchar")
        Account = self.env["mango.account"].sudo()
        companies = self.env["res.company"].create(
            [{"name": f"Migrated {index}"} for index in range(5)]
        )
        rows = [
            ("ok", "Соединение с сервером успешно установлено"),
            ("failed", "Mango hylkäsi allekirjoituksen (3102): tarkista suola."),
            ("failed", "Mango не знает этот ключ API (3105): проверьте ключ."),
            ("failed", "Сервер http://pbx.example недоступен (Connection refused)"),
            ("unknown", "Connection to the server was established successfully"),
        ]
        accounts = Account.create(
            [
                {"name": f"A{index}", "company_id": c.id}
                for index, c in enumerate(companies)
            ]
        )
        for account, (state, message) in zip(accounts, rows, strict=True):
            cr.execute(
                "UPDATE mango_account SET connection_state = %s, "
                "connection_message = %s, connection_result = NULL WHERE id = %s",
                (state, message, account.id),
            )
        self._migrate()
        self.assertEqual(
            [(a.connection_result, a.connection_result_params or {}) for a in accounts],
            [
                ("ok", {}),
                ("bad_signature", {}),
                ("unknown_key", {}),
                ("recorded_text", {"text": rows[3][1]}),
                (False, {}),
            ],
        )
        english = accounts.with_context(lang="en_US")
        self.assertEqual(
            english.mapped("connection_message"),
            [
                "Connection to the server was established successfully",
                "Mango refused the signature (3102): check the salt.",
                "Mango does not know this API key (3105): check the key.",
                rows[3][1],
                False,
            ],
        )
        cr.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = "
            "'mango_account' AND column_name = 'connection_message'"
        )
        self.assertFalse(cr.fetchone(), "the old column is dropped")
        # Run again (or on a new install): nothing to do, nothing fails.
        self._migrate()
