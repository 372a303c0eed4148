"""A Mango Office VPBX on loopback, for tests and demos (reference: mango-vpbx-api.md).

In-process::

    from mango_office.simulator import run_simulator

    hook = "http://127.0.0.1:8069/mango"
    with run_simulator(api_key="k", api_salt="s", webhook_url=hook) as sim:
        sim.base_url          # http://127.0.0.1:PORT/vpbx — point MangoClient here
        sim.play("incoming_answered", from_number="79031234567")
        sim.commands("commands/callback")

Standalone: ``python -m mango_office.simulator --help``.
"""

import contextlib
import json

from .clock import SimClock
from .core import Simulator
from .scenarios import SCENARIOS, ScenarioError
from .state import DEFAULT_SEED

__all__ = [
    "DEFAULT_SEED",
    "SCENARIOS",
    "ScenarioError",
    "SimClock",
    "Simulator",
    "load_seed",
    "run_simulator",
]


def load_seed(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def run_simulator(
    api_key="k",
    api_salt="s",
    webhook_url=None,
    seed=None,
    port=0,
    certfile=None,
    keyfile=None,
    host="127.0.0.1",
    **options,
):
    """Start a simulator on a free loopback port (``port=0``) and stop it afterwards.

    ``seed`` is a dict or a path to a JSON seed file; other keyword arguments go to
    :class:`Simulator` (``legacy_errors``, ``rate_limits``, ``clock``, ``stats_delay``).
    """
    if isinstance(seed, str):
        seed = load_seed(seed)
    sim = Simulator(
        api_key,
        api_salt,
        webhook_url=webhook_url,
        seed=seed,
        port=port,
        host=host,
        certfile=certfile,
        keyfile=keyfile,
        **options,
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
