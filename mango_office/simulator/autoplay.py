"""Background traffic for demos: the simulator plays a call every few seconds.

``python -m mango_office.simulator ... --play-every 20`` starts an :class:`AutoPlayer`
next to the server. Incoming answered calls are played *live* and moved on in real
time (ringing, then answered a few seconds later, then hung up), so a user watching
Odoo sees the incoming-call card ring and the call log fill in as it would with Mango.
Other calls (missed, outgoing, transfers) are delivered in one go.
"""

import logging
import random
import threading

from .scenarios import ScenarioError

_logger = logging.getLogger(__name__)

DEFAULT_NUMBERS = (
    "79031234567",
    "79164123321",
    "74956123450",
    "79857641771",
    "79266418899",
    "78126432109",
)

# (scenario, weight): most traffic is incoming, as in a shop's sales line.
MIX = (
    ("incoming_answered", 55),
    ("incoming_missed_queue", 12),
    ("click_to_call", 20),
    ("transfer", 8),
    ("incoming_missed_no_operator", 5),
)


class AutoPlayer:
    """Plays one call every ``every`` seconds until :meth:`stop`.

    :param sim: a started :class:`~mango_office.simulator.core.Simulator`
    :param every: seconds between the starts of two calls
    :param numbers: customer numbers (Mango format) the calls come from / go to
    :param extensions: employees who take the calls; the first one gets a third of
        them, so a demo user on that extension sees the incoming card often
    :param ring_seconds: real seconds a live call rings before it is answered
    """

    def __init__(
        self,
        sim,
        every,
        numbers=None,
        extensions=None,
        ring_seconds=6.0,
        talk_seconds=8.0,
        rng=None,
    ):
        if every <= 0:
            raise ValueError("--play-every must be a positive number of seconds")
        self.sim = sim
        self.every = float(every)
        self.numbers = [n for n in (numbers or DEFAULT_NUMBERS) if n]
        self.extensions = [e for e in (extensions or ()) if e]
        self.ring_seconds = min(float(ring_seconds), self.every / 3)
        self.talk_seconds = min(float(talk_seconds), self.every / 3)
        self.rng = rng or random.Random()
        self.played = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(
            target=self._loop, name="mango-sim-autoplay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.every + 5)

    def _extension(self):
        extensions = self.extensions or sorted(
            u["extension"] for u in self.sim.state.users.values()
        )
        if not extensions:
            return None
        if self.rng.random() < 1 / 3:
            return extensions[0]
        return self.rng.choice(extensions)

    def _loop(self):
        # A first call soon after start, then one per period.
        while not self._stop.wait(min(3.0, self.every)):
            try:
                self.play_one()
            except ScenarioError as error:
                _logger.warning("Autoplay skipped a call: %s", error)
            except Exception:  # the demo must keep running whatever one call does
                _logger.exception("Autoplay call failed")
            if self._stop.wait(max(0.0, self.every - 3.0)):
                return

    def play_one(self):
        """Play one call; returns the scenario name."""
        names = [name for name, _weight in MIX]
        weights = [weight for _name, weight in MIX]
        scenario = self.rng.choices(names, weights)[0]
        number = self.rng.choice(self.numbers)
        extension = self._extension()
        options = {"extension": extension}
        if scenario == "incoming_answered":
            entry = self.sim.play(
                scenario, from_number=number, live=True, wait=False, **options
            )["entry_id"]
            self._stop.wait(self.ring_seconds)
            self.sim.live_action(
                entry, "answer", after=max(1, int(self.ring_seconds)), wait=False
            )
            self._stop.wait(self.talk_seconds)
            self.sim.live_action(
                entry, "hangup", after=self.rng.randint(25, 240), wait=False
            )
        elif scenario == "click_to_call":
            self.sim.play(
                scenario,
                to_number=number,
                talk_seconds=self.rng.randint(20, 300),
                answered=self.rng.random() < 0.8,
                wait=False,
                **options,
            )
        elif scenario == "transfer":
            self.sim.play(scenario, from_number=number, wait=False, **options)
        else:
            self.sim.play(scenario, from_number=number, wait=False)
        self.played += 1
        return scenario
