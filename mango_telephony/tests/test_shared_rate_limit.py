"""Mango's limits hold for all of Odoo: every worker and instance shares one
limiter in the database (``mango.rate.limit``), so the PBX never sees more than
its per-product limit, and a lockout or a refusal one worker meets holds back the
others."""

import json
import os
import subprocess
import sys
import threading

from odoo.sql_db import db_connect
from odoo.tests import tagged
from odoo.tools import config

from mango_office.client import MangoClient
from mango_office.errors import (
    MangoDeferred,
    MangoLimiterUnavailable,
    MangoLockedOut,
    MangoRequestError,
)
from mango_office.ratelimit import DEFAULT_LIMITS
from mango_office.ratelimit_pg import SharedRateLimiter, product_digest

from .common import MangoSimulatorCase

CUSTOMER = "79031234567"
CALLBACK_LIMIT, CALLBACK_PERIOD = DEFAULT_LIMITS["callback"]


def busiest_window(times, period):
    """The most of ``times`` any window of ``period`` seconds holds."""
    times = sorted(times)
    return max(
        (
            sum(1 for t in times[i:] if t < start + period)
            for i, start in enumerate(times)
        ),
        default=0,
    )


def run_threads(target, args_list):
    """Run ``target`` once per arguments in threads; the exceptions they raised."""
    failures = []

    def guarded(*args):
        try:
            target(*args)
        except Exception as exc:  # noqa: BLE001 - the test reports them
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return failures


@tagged("post_install", "-at_install")
class TestSharedRateLimit(MangoSimulatorCase):
    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.mango_sim.clear_commands()

    def worker_limiter(self, **limits):
        """The limiter a worker builds for the account: a client's of its own."""
        limiter = self.mango_account._mango_client().rate_limiter
        limiter.limits.update(limits)
        return limiter

    def test_two_workers_never_spend_more_than_the_limit_together(self):
        workers = [self.worker_limiter(), self.worker_limiter()]
        self.assertIsNot(workers[0], workers[1])
        spent = []

        def send(limiter):
            for _ in range(4):
                ticket = limiter.acquire("commands/callback")
                spent.append(limiter.release(ticket))

        failures = run_threads(send, [(w,) for w in workers for _ in range(2)])
        self.assertFalse(failures)
        self.assertEqual(len(spent), 16)
        # The tokens' times on the database's clock, whichever worker spent them.
        self.assertEqual(busiest_window(spent, CALLBACK_PERIOD), CALLBACK_LIMIT)

    def test_a_spent_token_stays_spent_when_the_request_rolls_back(self):
        first = self.worker_limiter(users=(1, 600.0))
        second = self.worker_limiter(users=(1, 600.0))
        with self.assertRaises(RuntimeError), self.env.cr.savepoint():
            self.assertIsNotNone(first.try_acquire("config/users/request"))
            first.note_invalid()
            raise RuntimeError("the request fails after sending")
        self.assertIsNone(second.try_acquire("config/users/request"))
        self.assertGreater(second.invalid_strike_for(), 0)

    def provoke_lockout(self, client):
        """Two invalid requests: Mango (the simulator) locks the product out."""
        with self.assertRaises(MangoRequestError):
            client.call("commands/callback", {"command_id": "x", "to_number": CUSTOMER})
        with self.assertRaises(MangoLockedOut):
            client.call("commands/callback", {"command_id": "y", "to_number": CUSTOMER})

    def test_a_lockout_one_worker_meets_stops_the_others_without_asking(self):
        first, second = (
            self.mango_account._mango_client(),
            self.mango_account._mango_client(),
        )
        self.provoke_lockout(first)
        sent = len(self.mango_sim.commands())
        with self.assertRaises(MangoLockedOut) as caught:
            second.balance()
        self.assertGreater(caught.exception.retry_after, 100)
        self.assertEqual(len(self.mango_sim.commands()), sent, "nothing was sent")

    def test_a_refusal_one_worker_meets_defers_the_others_deferrable_work(self):
        first, second = (
            self.mango_account._mango_client(),
            self.mango_account._mango_client(),
        )
        with self.assertRaises(MangoRequestError):
            first.call("commands/callback", {"command_id": "x", "to_number": CUSTOMER})
        with self.assertRaises(MangoDeferred):
            second.recording("MToxMDE0NDY0NTE6MTk4NDA3MzI4MDI6MA==")
        self.assertFalse(self.mango_sim.commands("queries/recording/post"))
        # Work that cannot wait still goes.
        self.assertIn("balance", second.balance())

    def test_limits_are_per_product(self):
        url = self.mango_account.api_base_url
        Limits = self.env["mango.rate.limit"]
        first = Limits._mango_limiter(url, "product-one")
        again = Limits._mango_limiter(url, "product-one")
        other = Limits._mango_limiter(url, "product-two")
        for limiter in (first, again, other):
            limiter.limits["users"] = (1, 600.0)
        self.addCleanup(first.forget)
        self.addCleanup(other.forget)
        self.assertIsNotNone(first.try_acquire("config/users/request"))
        self.assertIsNone(again.try_acquire("config/users/request"))
        self.assertIsNotNone(other.try_acquire("config/users/request"))
        first.lock_out(120)
        self.assertGreater(again.locked_for(), 100)
        self.assertEqual(other.locked_for(), 0)

    def test_the_daily_cleanup_keeps_the_products_in_use(self):
        limiter = self.worker_limiter(users=(1, 600.0))
        limiter.release(limiter.acquire("config/users/request"))
        self.env["mango.rate.limit"]._gc_idle_products()
        self.assertIsNone(
            self.worker_limiter(users=(1, 600.0)).try_acquire("config/users/request")
        )

    def test_without_its_database_the_limiter_sends_nothing(self):
        product = product_digest(self.mango_sim.base_url, self.mango_api_key)
        limiter = SharedRateLimiter(
            lambda: db_connect("lim_no_such_database").cursor(), product
        )
        client = MangoClient(
            self.mango_api_key,
            self.mango_api_salt,
            base_url=self.mango_sim.base_url,
            rate_limiter=limiter,
        )
        with self.assertRaises(MangoLimiterUnavailable) as caught:
            client.balance()
        self.assertFalse(self.mango_sim.commands())
        message = self.mango_account._mango_error_message(caught.exception)
        self.assertIn("not sent", message)


@tagged("post_install", "-at_install")
class TestSharedRateLimitClickToCall(MangoSimulatorCase):
    """Click-to-call requests from many workers at once, against the simulator,
    whose own limits answer 429 to a fifth callback within a second."""

    def setUp(self):
        super().setUp()
        self.mango_sim_reset()
        self.mango_sim.clear_commands()

    def assert_pbx_saw_the_limit_at_most(self, expected):
        log = self.mango_sim.commands("commands/callback")
        self.assertEqual(len(log), expected, "one request per click, no retry")
        self.assertEqual({entry["http_status"] for entry in log}, {200})
        busiest = busiest_window([entry["time"] for entry in log], CALLBACK_PERIOD)
        self.assertLessEqual(busiest, CALLBACK_LIMIT)

    def test_threads_of_one_process_stay_within_the_limit(self):
        clients = [self.mango_account._mango_client() for _ in range(6)]

        def click(client):
            for _ in range(3):
                client.callback("101", CUSTOMER)

        failures = run_threads(click, [(c,) for c in clients])
        self.assertFalse(failures)
        self.assert_pbx_saw_the_limit_at_most(18)

    def test_worker_processes_stay_within_the_limit(self):
        """Three processes, as the workers of two instances are: nothing of the
        limiter is shared but the database."""
        addons_path = config["addons_path"]
        if not isinstance(addons_path, str):
            addons_path = ",".join(addons_path)
        odoo_args = ["--addons-path", addons_path, "--log-level", "warn"]
        for option in ("db_host", "db_port", "db_user", "db_password"):
            if config.get(option):
                odoo_args += [f"--{option}", str(config[option])]
        arguments = {
            "odoo_args": odoo_args,
            "db": self.env.registry.db_name,
            "account": {
                "name": "Worker's account",
                "api_key": self.mango_api_key,
                "api_salt": self.mango_api_salt,
                "api_base_url": self.mango_sim.base_url,
                "verify_ssl": True,
                "request_timeout": 15,
            },
            "threads": 2,
            "calls": 3,
            "extension": "101",
            "number": CUSTOMER,
        }
        script = os.path.join(os.path.dirname(__file__), "limiter_worker.py")
        workers = [
            subprocess.Popen(
                [sys.executable, script, json.dumps(arguments)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        try:
            for worker in workers:
                self.assertEqual(worker.stdout.readline().strip(), "ready")
            for worker in workers:  # all at once
                worker.stdin.write("go\n")
                worker.stdin.flush()
            results = [
                json.loads(worker.communicate(timeout=300)[0]) for worker in workers
            ]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        self.assertEqual([r["failures"] for r in results], [[], [], []])
        self.assert_pbx_saw_the_limit_at_most(18)
