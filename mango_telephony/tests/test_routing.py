import time

from odoo.tests import tagged

from odoo.addons.mango_telephony.compat.contact_phones import MOBILE_INPUT

from .common import MangoHttpCase
from .followup_common import MangoFollowupCase


@tagged("post_install", "-at_install")
class TestSmartRouting(MangoFollowupCase, MangoHttpCase):
    # HttpCase: its registry test mode lets the throttle's own committed cursor
    # share the test transaction, as it shares the database in production.

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Key account",
                "phone": "+7 916 300-00-01",
                "user_id": cls.salesperson.id,
            }
        )
        cls.other_customer = cls.env["res.partner"].create(
            {
                "name": "Another",
                MOBILE_INPUT: "+7 916 300-00-02",
                "user_id": cls.salesperson.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.mango_account.write({"smart_routing": True, "route_next_allowed_at": 0})

    def _waiting_call(self, number):
        """A live call still being distributed by Mango (voice menu → queue →
        ringing 101), delivered through the worker."""
        events = self.mango_play(
            "incoming_answered", from_number=number, extension="101", live=True
        )
        self.mango_ingest(events)
        self.mango_process_all()
        return self.mango_call(events[0][1]["entry_id"]), events

    def _deliveries_ringing(self, entry_id, extension, timeout=10.0):
        """The batch of simulator events of ``entry_id`` that rings
        ``extension`` (the simulator posts them from its own thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for delivery in self.mango_sim.events(entry_id=entry_id):
                # Mango sends extensions as strings or numbers.
                to = delivery["payload"].get("to") or {}
                if str(to.get("extension")) == extension:
                    return self.mango_sim.events_of_batch(delivery["batch"])
            time.sleep(0.05)
        return []

    def _routes(self):
        return self.mango_sim.commands("commands/route")

    def test_known_customer_is_sent_to_the_salesperson_once(self):
        call, events = self._waiting_call("79163000001")
        self.assertEqual(call.partner_id, self.customer)
        routes = self._routes()
        self.assertEqual(len(routes), 1)
        waiting_leg = call.leg_ids.filtered(
            lambda leg: leg.location in ("ivr", "queue")
        )
        self.assertEqual(routes[0]["payload"]["call_id"], waiting_leg.mango_call_id)
        self.assertEqual(routes[0]["payload"]["to_number"], "103")
        self.assertEqual(routes[0]["result"], 1000)
        self.assertEqual(call.route_state, "sent")
        self.assertEqual(call.route_user_id, self.salesperson)
        self.assertEqual(routes[0]["payload"]["command_id"], call.route_command_id)
        # The same events again, and the events the route itself produced: no
        # second command for this call, even once the limit window has passed.
        self.mango_account.route_next_allowed_at = 0
        self.mango_ingest(self.mango_shuffled_with_duplicates(events, ratio=1.0))
        rerouted = self._deliveries_ringing(call.entry_id, "103")
        self.assertTrue(rerouted, "the route produced new events (ringing 103)")
        self.mango_ingest([(d["path"], d["payload"]) for d in rerouted])
        self.mango_process_all()
        self.assertEqual(len(self._routes()), 1)
        ringing = call.leg_ids.filtered(lambda leg: leg.to_extension == "103")
        self.assertTrue(ringing, "Mango now rings the salesperson")

    def test_route_limit_one_per_two_seconds(self):
        first, _events = self._waiting_call("79163000001")
        second, _events = self._waiting_call("79163000002")
        self.assertEqual(first.route_state, "sent")
        self.assertEqual(second.route_state, "throttled")
        self.assertEqual(len(self._routes()), 1)
        next_allowed = self.mango_account.route_next_allowed_at
        self.assertGreater(next_allowed, time.time())
        self.assertLessEqual(next_allowed - time.time(), 2.0)

    def test_slot_is_taken_atomically(self):
        self.assertTrue(self.mango_account._mango_take_route_slot())
        self.assertFalse(self.mango_account._mango_take_route_slot())
        self.mango_account.route_next_allowed_at = time.time() - 0.01
        self.assertTrue(self.mango_account._mango_take_route_slot())

    def test_off_by_default_and_when_disabled(self):
        self.assertFalse(self.env["mango.account"].new({}).smart_routing)
        self.mango_account.smart_routing = False
        call, _events = self._waiting_call("79163000001")
        self.assertFalse(call.route_state)
        self.assertFalse(self._routes())

    def test_unknown_caller_and_salesperson_without_extension_are_left_alone(self):
        call, _events = self._waiting_call("79990000009")
        self.assertFalse(call.partner_id)
        self.assertFalse(self._routes())
        self.salesperson.mango_extension = False
        call, _events = self._waiting_call("79163000001")
        self.assertFalse(call.route_state)
        self.assertFalse(self._routes())

    def test_extension_from_account_list_is_used(self):
        self.customer.user_id = self.agent_102  # known through mango.account.user
        call, _events = self._waiting_call("79163000001")
        self.assertEqual(call.route_state, "sent")
        self.assertEqual(self._routes()[0]["payload"]["to_number"], "102")

    def test_answered_calls_are_not_routed(self):
        call = self.mango_run("incoming_answered", from_number="79163000001")
        self.assertEqual(call.status, "answered")
        self.assertFalse(self._routes())
