"""Who may hold which extension, and that a typed extension never rings a phone.

An extension is a phone on the PBX: whoever holds it in Odoo gets its incoming
cards and calls, and click-to-call rings it. These tests act as the telephony
user themself (``with_user``), as Odoo's own forms and RPC do.
"""

import copy
import json

import psycopg2

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged
from odoo.tools import mute_logger

from mango_office.simulator import DEFAULT_SEED

from .calls_common import MangoCallsMixin
from .common import free_closed_port

CUSTOMER = "79031234567"


def seed_with(*users):
    """The simulator's default office plus ``users`` (PBX employees)."""
    seed = copy.deepcopy(DEFAULT_SEED)
    seed["users"].extend(users)
    return seed


class MangoOwnershipCase(MangoCallsMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.country_id = cls.env.ref("base.ru")
        cls.mango_setup_calls()
        cls.newcomer = new_test_user(
            cls.env,
            "newcomer@example.com",
            name="Nina Newcomer",
            groups="mango_telephony.group_mango_user",
        )
        cls.telephony_admin = new_test_user(
            cls.env,
            "tel.admin@example.com",
            name="Tanya Admin",
            groups="mango_telephony.group_mango_admin",
        )
        cls.settings_admin = new_test_user(
            cls.env, "settings.admin@example.com", groups="base.group_system"
        )

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.mango_sim.clear_commands()

    def mapping(self, user, account=None):
        account = account or self.mango_account
        return (
            self.env["mango.account.user"]
            .sudo()
            .search([("account_id", "=", account.id), ("user_id", "=", user.id)])
        )

    def pbx_colleague(self, login, name):
        """The Odoo user the PBX's employee ``login`` is (the demo data may
        already have them)."""
        user = self.env["res.users"].search([("login", "=", login)])
        return user or new_test_user(
            self.env, login, name=name, groups="mango_telephony.group_mango_user"
        )

    def users_requests(self):
        return self.mango_sim.commands("config/users/request")

    def try_self_assign(self, user, extension):
        """What a user gets by typing ``extension`` in their preferences; the
        refusal, if any, is returned rather than raised."""
        try:
            with self.env.cr.savepoint():
                user.with_user(user).write({"mango_extension": extension})
        except UserError as error:
            return error
        return None

    def callbacks(self):
        return [c["payload"] for c in self.mango_sim.commands("commands/callback")]


@tagged("post_install", "-at_install")
class TestSelfAssignment(MangoOwnershipCase):
    def test_taken_extension_is_refused_naming_its_holder(self):
        with self.assertRaises(ValidationError) as caught:
            self.agent_101.with_user(self.agent_101).write({"mango_extension": "102"})
        message = str(caught.exception)
        self.assertIn("102", message)
        self.assertIn(self.agent_102.name, message)
        self.assertEqual(self.mapping(self.agent_101).extension, "101")
        self.assertEqual(self.mapping(self.agent_102).extension, "102")
        # Decided in Odoo: the PBX was not even asked.
        self.assertFalse(self.users_requests())

    def test_extension_missing_on_the_pbx_is_refused_with_the_reason(self):
        with self.assertRaises(ValidationError) as caught:
            self.newcomer.with_user(self.newcomer).write({"mango_extension": "777"})
        message = str(caught.exception)
        self.assertIn("777", message)
        self.assertIn("does not exist on the PBX", message)
        self.assertFalse(self.mapping(self.newcomer))
        [request] = self.users_requests()
        self.assertEqual(str(request["payload"]["extension"]), "777")

    def test_extension_the_pbx_gives_to_a_colleague_is_refused(self):
        # 103 is Maria's on the PBX; Maria uses Odoo but has no extension there yet.
        maria = self.pbx_colleague("maria.ivanova@example.com", "Maria Ivanova")
        with self.assertRaises(ValidationError) as caught:
            self.newcomer.with_user(self.newcomer).write({"mango_extension": "103"})
        self.assertIn(maria.name, str(caught.exception))
        self.assertFalse(self.mapping(self.newcomer))
        self.assertFalse(self.mapping(maria))
        # Maria herself may take it.
        maria.with_user(maria).write({"mango_extension": "103"})
        self.assertEqual(self.mapping(maria).extension, "103")

    def test_free_extension_of_the_pbx_is_accepted(self):
        self.mango_sim_seed(
            seed_with(
                {
                    "user_id": 400100150,
                    "name": "Nina Newcomer",
                    "extension": "150",
                    "email": "NEWCOMER@example.com",
                },
                {"user_id": 400100151, "name": "Spare phone", "extension": "151"},
            )
        )
        self.newcomer.with_user(self.newcomer).write({"mango_extension": " 150 "})
        self.assertEqual(self.mapping(self.newcomer).extension, "150")
        self.assertEqual(
            self.newcomer.with_user(self.newcomer).read(["mango_extension"])[0][
                "mango_extension"
            ],
            "150",
        )
        # A PBX employee nobody in Odoo is known as can be taken too.
        self.newcomer.with_user(self.newcomer).write({"mango_extension": "151"})
        self.assertEqual(self.mapping(self.newcomer).extension, "151")
        # Clearing is always allowed and frees it for someone else.
        self.newcomer.with_user(self.newcomer).write({"mango_extension": False})
        self.assertFalse(self.mapping(self.newcomer))
        self.assertFalse(self.newcomer.mango_extension)

    def test_unreachable_pbx_refuses_with_the_reason_and_changes_nothing(self):
        self.mango_account.sudo().api_base_url = (
            f"http://127.0.0.1:{free_closed_port()}/vpbx"
        )
        with self.assertRaises(UserError) as caught:
            self.newcomer.with_user(self.newcomer).write({"mango_extension": "104"})
        message = str(caught.exception)
        self.assertIn("104", message)
        self.assertIn("cannot be reached", message)
        self.assertFalse(self.mapping(self.newcomer))

    def test_extension_is_digits(self):
        with self.assertRaises(ValidationError) as caught:
            self.newcomer.with_user(self.newcomer).write({"mango_extension": "10 1a"})
        self.assertIn("10 1a", str(caught.exception))
        self.assertFalse(self.users_requests())

    def test_import_goes_through_the_same_checks(self):
        # Users cannot import users at all; an administrator's import is checked
        # like the form.
        result = (
            self.env["res.users"]
            .with_user(self.agent_101)
            .load([".id", "mango_extension"], [[str(self.agent_101.id), "104"]])
        )
        self.assertFalse(result["ids"])
        result = (
            self.env["res.users"]
            .with_user(self.settings_admin)
            .load([".id", "mango_extension"], [[str(self.agent_101.id), "102"]])
        )
        self.assertFalse(result["ids"])
        self.assertIn(self.agent_102.name, str(result["messages"]))
        self.assertEqual(self.mapping(self.agent_101).extension, "101")

    def test_user_cannot_touch_the_account_extension_list(self):
        mapping = self.mapping(self.agent_101).with_user(self.agent_101)
        with self.assertRaises(AccessError):
            mapping.write({"extension": "102"})
        with self.assertRaises(AccessError):
            self.env["mango.account.user"].with_user(self.agent_101).create(
                {
                    "account_id": self.mango_account.id,
                    "user_id": self.agent_101.id,
                    "extension": "104",
                }
            )
        with self.assertRaises(AccessError):
            self.agent_101.with_user(self.agent_101).write(
                {
                    "mango_account_user_ids": [
                        Command.create(
                            {"account_id": self.mango_account.id, "extension": "104"}
                        )
                    ]
                }
            )
        self.assertEqual(self.mapping(self.agent_101).extension, "101")

    def test_nobody_else_writes_a_users_extension(self):
        with self.assertRaises(AccessError):
            self.agent_102.with_user(self.agent_101).write({"mango_extension": "104"})
        # Managing users is not managing the PBX.
        user_manager = new_test_user(
            self.env,
            "user.manager@example.com",
            groups="base.group_erp_manager,mango_telephony.group_mango_user",
        )
        with self.assertRaises(AccessError):
            self.newcomer.with_user(user_manager).write({"mango_extension": "104"})
        self.assertFalse(self.mapping(self.newcomer))


@tagged("post_install", "-at_install")
class TestAdministratorAssignment(MangoOwnershipCase):
    def test_admin_assigns_without_asking_the_pbx(self):
        # Even one the PBX does not have yet: the admin may be ahead of Mango.
        self.newcomer.with_user(self.settings_admin).write({"mango_extension": "160"})
        self.assertEqual(self.mapping(self.newcomer).extension, "160")
        self.assertFalse(self.users_requests())
        # A telephony administrator edits the account's list.
        self.env["mango.account.user"].with_user(self.telephony_admin).create(
            {
                "account_id": self.mango_account.id,
                "user_id": self.telephony_admin.id,
                "extension": "104",
            }
        )
        self.assertEqual(self.telephony_admin.mango_extension, "104")
        self.telephony_admin.with_user(self.telephony_admin).write(
            {"mango_extension": "161"}
        )
        self.assertEqual(self.mapping(self.telephony_admin).extension, "161")
        self.assertFalse(self.users_requests())

    def test_admin_cannot_give_one_extension_to_two_people(self):
        with self.assertRaises(ValidationError) as caught:
            self.newcomer.with_user(self.settings_admin).write(
                {"mango_extension": "101"}
            )
        self.assertIn(self.agent_101.name, str(caught.exception))
        with self.assertRaises(ValidationError) as caught:
            self.env["mango.account.user"].with_user(self.telephony_admin).create(
                {
                    "account_id": self.mango_account.id,
                    "user_id": self.newcomer.id,
                    "extension": "102",
                }
            )
        self.assertIn(self.agent_102.name, str(caught.exception))
        with self.assertRaises(ValidationError):
            self.mapping(self.agent_101).with_user(self.telephony_admin).write(
                {"extension": "102"}
            )
        # Moving an extension: free it, then give it.
        self.agent_102.with_user(self.settings_admin).write({"mango_extension": False})
        self.newcomer.with_user(self.settings_admin).write({"mango_extension": "102"})
        self.assertEqual(self.mapping(self.newcomer).extension, "102")

    def test_the_database_keeps_one_holder_per_extension(self):
        mapping = self.mapping(self.agent_102)
        with (
            mute_logger("odoo.sql_db"),
            self.assertRaises(psycopg2.errors.UniqueViolation),
            self.env.cr.savepoint(),
        ):
            self.env.cr.execute(
                "INSERT INTO mango_account_user (account_id, user_id, extension)"
                " VALUES (%s, %s, %s)",
                (mapping.account_id.id, self.newcomer.id, mapping.extension),
            )

    def test_users_of_another_company_do_not_hold_extensions_here(self):
        other = self.env["res.company"].create({"name": "Elsewhere Ltd"})
        stranger = new_test_user(
            self.env,
            "stranger@example.com",
            groups="mango_telephony.group_mango_user",
            company_id=other.id,
            company_ids=[Command.set(other.ids)],
        )
        with self.assertRaises(ValidationError):
            self.env["mango.account.user"].create(
                {
                    "account_id": self.mango_account.id,
                    "user_id": stranger.id,
                    "extension": "104",
                }
            )


@tagged("post_install", "-at_install")
class TestTypedExtensionRingsNothing(MangoOwnershipCase):
    """Whatever a user types, cards and click-to-call follow the account's list."""

    def ring(self, extension):
        """Play a live incoming call to ``extension``; its call and the partner
        ids the cards were pushed to."""
        result = self.mango_sim.play(
            "incoming_answered", wait=False, live=True, extension=extension
        )
        self.env["bus.bus"].sudo().search([]).unlink()
        self.mango_ingest([(e["path"], e["payload"]) for e in result["planned"]])
        self.mango_process_all()
        self.env.cr.precommit.run()
        cards = (
            self.env["bus.bus"].sudo().search([("message", "like", "mango_call_card")])
        )
        recipients = {json.loads(note.channel)[-1] for note in cards}
        return self.mango_call(result["entry_id"]), recipients

    def test_card_never_reaches_a_user_through_a_typed_extension(self):
        # 103 belongs to Maria on the PBX; the newcomer types it anyway.
        maria = self.pbx_colleague("maria.ivanova@example.com", "Maria Ivanova")
        self.try_self_assign(self.newcomer, "103")
        call, recipients = self.ring("103")
        self.assertTrue(call)
        self.assertNotIn(self.newcomer.partner_id.id, recipients)
        self.assertNotIn(self.newcomer, call.leg_ids.user_id | call.user_id)
        self.assertFalse(self.env["mango.call"].with_user(self.newcomer).search([]))
        # Once the administrator maps 103 to Maria, the card is hers.
        self.env["mango.account.user"].create(
            {
                "account_id": self.mango_account.id,
                "user_id": maria.id,
                "extension": "103",
            }
        )
        call, recipients = self.ring("103")
        self.assertEqual(recipients, {maria.partner_id.id})

    def test_click_to_call_rings_only_the_users_own_extension(self):
        refusal = self.try_self_assign(self.agent_101, "102")
        self.assertIsNotNone(refusal)
        # Neither a context key nor an argument chooses the extension.
        Users = self.env["res.users"].with_user(self.agent_101)
        answer = Users.with_context(mango_extension="102").mango_click_to_call(CUSTOMER)
        self.assertEqual(answer["status"], "calling", answer)
        self.assertEqual(
            [str(p["from"]["extension"]) for p in self.callbacks()], ["101"]
        )

    def test_user_without_a_mapping_cannot_call_from_a_typed_extension(self):
        self.try_self_assign(self.newcomer, "102")
        answer = (
            self.env["res.users"].with_user(self.newcomer).mango_click_to_call(CUSTOMER)
        )
        self.assertEqual(answer["status"], "error")
        self.assertFalse(self.callbacks())


@tagged("post_install", "-at_install")
class TestExtensionsTypedBeforeTheLists(MangoOwnershipCase):
    """An update from the version where the preference was a column of its own
    moves what users typed into the account's list, without giving one
    extension to two people, and loses nothing."""

    def test_typed_extensions_are_moved_once_and_kept(self):
        cr = self.env.cr
        self.env.flush_all()
        cr.execute(
            "ALTER TABLE res_users DROP COLUMN IF EXISTS mango_extension_before_lists"
        )
        cr.execute("ALTER TABLE res_users ADD COLUMN mango_extension varchar")
        typed = {
            self.newcomer: " 104 ",
            self.telephony_admin: "102",  # agent 102's already
            self.settings_admin: "10a",
        }
        for user, extension in typed.items():
            cr.execute(
                "UPDATE res_users SET mango_extension = %s WHERE id = %s",
                (extension, user.id),
            )
        Mapping = self.env["mango.account.user"]
        Mapping.init()
        self.env.invalidate_all()
        self.assertEqual(self.mapping(self.newcomer).extension, "104")
        self.assertEqual(self.newcomer.mango_extension, "104")
        self.assertFalse(self.mapping(self.telephony_admin))
        self.assertFalse(self.mapping(self.settings_admin))
        self.assertEqual(self.mapping(self.agent_102).extension, "102")
        cr.execute(
            "SELECT id, mango_extension_before_lists FROM res_users WHERE id IN %s",
            (tuple(u.id for u in typed),),
        )
        self.assertEqual(
            dict(cr.fetchall()), {user.id: ext for user, ext in typed.items()}
        )
        # Once: the old column is gone, a second update changes nothing.
        Mapping.init()
        self.assertEqual(
            Mapping.search_count([("user_id", "in", self.newcomer.ids)]), 1
        )
