"""The simulator's demo traffic (``--play-every``): calls of every kind, live ringing."""

import random
import time

import pytest

from mango_office.simulator.__main__ import build_parser
from mango_office.simulator.autoplay import MIX, AutoPlayer
from mango_office.simulator.core import Simulator


@pytest.fixture
def sim():
    simulator = Simulator("k", "s").start()
    yield simulator
    simulator.stop()


def test_play_one_finishes_every_call_and_uses_the_given_parties(sim):
    player = AutoPlayer(
        sim,
        0.15,
        numbers=["79990001111"],
        extensions=["102", "103"],
        rng=random.Random(7),
    )
    played = []
    while len(set(played)) < len(MIX) and len(played) < 200:
        played.append(player.play_one())
    assert set(played) == {name for name, _weight in MIX}
    deadline = time.monotonic() + 10
    while len(sim.state.calls) < len(played) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sim.state.calls) == len(played)
    assert not sim.state.live_calls
    parties = {
        (c["from_number"], c["to_number"], c["from_extension"], c["to_extension"])
        for c in sim.state.calls
    }
    assert any("79990001111" in p for p in parties)
    answered = [c for c in sim.state.calls if c["talk_time"]]
    assert answered


def test_incoming_answered_rings_live_before_it_is_answered(sim):
    player = AutoPlayer(sim, 3.0, extensions=["101"], ring_seconds=0.6)
    player.rng = random.Random()
    player.rng.choices = lambda names, weights: ["incoming_answered"]
    seen_live = []
    original = sim.live_action

    def spy(entry_id, action, **options):
        seen_live.append((action, entry_id in sim.state.live_calls))
        return original(entry_id, action, **options)

    sim.live_action = spy
    assert player.play_one() == "incoming_answered"
    assert seen_live == [("answer", True), ("hangup", True)]
    assert not sim.state.live_calls


def test_background_loop_plays_until_stopped(sim):
    player = AutoPlayer(sim, 0.2, rng=random.Random(3)).start()
    time.sleep(1.5)
    player.stop()
    count = player.played
    assert count >= 2
    time.sleep(0.5)
    assert player.played == count


def test_cli_options():
    args = build_parser().parse_args(
        [
            "--api-key",
            "k",
            "--api-salt",
            "s",
            "--play-every",
            "15",
            "--play-numbers",
            "7903,7916",
            "--play-extensions",
            "101",
        ]
    )
    assert args.play_every == 15.0
    with pytest.raises(ValueError):
        AutoPlayer(None, 0)
