"""Test helpers shared by the Mango addons: a running Mango simulator on loopback
and a ``mango.account`` pointing at it.

Other addons import them as ``from odoo.addons.mango_telephony.tests.common import
MangoSimulatorCase``.
"""

import contextlib
import json
import socket
import time
import uuid
from urllib.parse import urlsplit

import requests

from odoo.tests import HttpCase, TransactionCase
from odoo.tests import common as odoo_test_common

from odoo.addons.bus.models.bus import dispatch

from mango_office.simulator import run_simulator

MANGO_TEST_API_KEY = "odootestkey4mango0simulator"
MANGO_TEST_API_SALT = "odootestsalt4mango0simulator0signs"


def free_closed_port():
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_bus_subscription(channel, timeout=60):
    """Block until a browser's websocket listens on ``channel``: the tour's page
    is ready for what the test pushes to it."""
    deadline = time.monotonic() + timeout
    while not dispatch._channels_to_ws.get(channel):
        if time.monotonic() > deadline:
            raise AssertionError("the browser never subscribed")
        time.sleep(0.2)


def push_bus_notifications(channel):
    """Have the websockets listening on ``channel`` fetch their notifications now
    rather than at the bus's next poll."""
    for websocket in dispatch._channels_to_ws.get(channel, ()):
        websocket.trigger_notification_dispatching()


def keep_request_timeouts(test):
    """Let ``test``'s HTTP requests time out as asked.

    Odoo 19.0's test harness raises every ``requests`` timeout under 10 s to
    10 s; a test of our own timeout (a PBX slower than the account allows)
    needs it as set. Requests still may not leave the loopback interface.
    """
    send = getattr(odoo_test_common, "_super_send", None)
    if send is None or not hasattr(type(test), "_request_handler"):
        return  # 18.0 leaves timeouts alone

    def handler(cls, session, request, **kwargs):
        host = urlsplit(request.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"a test may not reach {host}")
        return send(session, request, **kwargs)

    test.patch(type(test), "_request_handler", classmethod(handler))


def mango_refresh_statistics(env):
    """What the fold's commit does to the statistics, on the test's cursor: its
    pre-commit marks the days of the finished calls, and the refresh that
    production runs after the commit in a transaction of its own (a test
    cursor neither commits nor runs post-commit hooks) consumes them."""
    env.cr.precommit.run()
    return env["mango.call.stat"].sudo()._mango_refresh_marked()


def mango_load_languages(env, codes=("ru_RU", "fi_FI"), modules=("mango_telephony",)):
    """Activate ``codes`` with the shipped translations of ``modules``: what a
    Russian or Finnish user of a real database reads (a test database has none)."""
    for code in codes:
        env["res.lang"]._activate_lang(code)
    env["ir.module.module"].search(
        [("name", "in", list(modules))]
    )._update_translations(list(codes), overwrite=True)


class MangoHttpCase(HttpCase):
    """``HttpCase`` that serves every request on the test cursor, on both series.

    Odoo 19 refuses a request without the per-test cookie that only its own
    browser and ``url_open`` carry; ours also come from the simulator's thread
    (webhooks it posts, recordings Odoo fetches back) and from ``requests``
    sessions playing Mango or a site visitor. 18 has no such check.
    """

    def setUp(self):
        super().setUp()
        self.http_request_allow_all = True

    def mango_serving_requests(self):
        """Context in which this test waits for another thread's requests to
        this server (the simulator posting webhooks): on 19.0 the test thread
        holds the lock each request waits for, outside ``url_open`` and the
        browser; 18.0 serves them anyway."""
        if not hasattr(self, "allow_requests"):
            return contextlib.nullcontext()
        return self.allow_requests(all_requests=True)

    def mango_wait_idle(self, simulator=None):
        """Wait until the simulator has no delivery on its way."""
        with self.mango_serving_requests():
            return (simulator or self.mango_sim).wait_idle()


class MangoSimulatorMixin:
    """Start Mango simulators and create accounts for them.

    A simulator answers as Mango does, 3xxx lockout included: a test that sends a
    wrong key or salt twice is locked out for two (simulated) minutes. Give such
    tests their own simulator (:meth:`mango_start_simulator`) or reset the shared one
    (:meth:`mango_sim_reset`).
    """

    mango_api_key = MANGO_TEST_API_KEY
    mango_api_salt = MANGO_TEST_API_SALT
    #: seed of the class simulator (``None``: the simulator's default office)
    mango_seed = None

    @classmethod
    def _mango_simulator(cls, cleanup, **options):
        options.setdefault("api_key", cls.mango_api_key)
        options.setdefault("api_salt", cls.mango_api_salt)
        options.setdefault("seed", cls.mango_seed)
        options.setdefault("port", 0)
        context = run_simulator(**options)
        simulator = context.__enter__()
        cleanup(context.__exit__, None, None, None)
        return simulator

    @classmethod
    def mango_start_class_simulator(cls, **options):
        """A simulator that runs until the class's tests are done.

        :param options: arguments of ``mango_office.simulator.run_simulator``
        """
        return cls._mango_simulator(cls.addClassCleanup, **options)

    def mango_start_simulator(self, **options):
        """A simulator that runs until the current test is done."""
        return self._mango_simulator(self.addCleanup, **options)

    @classmethod
    def mango_create_account(cls, simulator, company=None, **values):
        """A ``mango.account`` of ``company`` (the current company by default) that
        talks to ``simulator``; the company's other accounts are archived.

        Events are accepted from any address because the simulator posts them from
        127.0.0.1; tests of the address filter set it themselves.
        """
        company = company or cls.env.company
        Account = cls.env["mango.account"].sudo()
        Account.search([("company_id", "=", company.id)]).action_archive()
        vals = {
            "name": f"Mango simulator {simulator.base_url}",
            "company_id": company.id,
            "api_base_url": simulator.base_url,
            "api_key": cls.mango_api_key,
            "api_salt": cls.mango_api_salt,
            "ip_filter_mode": "any",
        }
        vals.update(values)
        return Account.create(vals).with_env(cls.env)

    @staticmethod
    def mango_sim_control(simulator, path, payload=None, method="POST"):
        """Call the simulator's control API (``/_sim/<path>``); returns its JSON."""
        response = requests.request(
            method,
            f"{simulator.control_url.rstrip('/')}/{path.lstrip('/')}",
            data=json.dumps(payload or {}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def mango_sim_reset(self, simulator=None):
        """Back to the initial seed: no calls, no lockout, full rate-limit buckets.

        Our side forgets too: the limiter in the database remembers Mango's
        lockouts and recent refusals per product, across tests.
        """
        (simulator or self.mango_sim).reset()
        self.mango_forget_rate_limits()

    def mango_forget_rate_limits(self):
        """Forget every product's spent tokens, lockout and last refusal. The
        limiter commits them on connections of its own, so a test's rollback
        leaves them for the next test."""
        self.env["mango.rate.limit"]._mango_forget_all()

    def setUp(self):
        super().setUp()
        # Each test starts with no refusal on record: a 3xxx provoked by an
        # earlier test would otherwise hold back this one's deferrable requests.
        self.mango_forget_rate_limits()

    def mango_sim_seed(self, seed, simulator=None):
        """Replace the simulated PBX (lines, users, groups…) with ``seed``."""
        return (simulator or self.mango_sim).seed(seed)

    @staticmethod
    def mango_command_id():
        return str(uuid.uuid4())


class MangoSimulatorCase(MangoSimulatorMixin, TransactionCase):
    """A transaction case with ``cls.mango_sim`` running and ``cls.mango_account``
    (of the current company) pointing at it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mango_sim = cls.mango_start_class_simulator()
        cls.mango_account = cls.mango_create_account(cls.mango_sim)
