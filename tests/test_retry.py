"""The shared retry rule (mango_office/retry.py)."""

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mango_office.retry import Backoff

NOW = datetime(2026, 12, 6, 12, 0)
MINUTE = timedelta(minutes=1)

# The queues' own numbers, as mango_event.py and mango_call_recording.py set them.
EVENTS = Backoff(first=MINUTE, factor=2, cap=timedelta(hours=1), max_attempts=8)
RECORDINGS = Backoff(first=MINUTE, factor=1, window=timedelta(hours=1))


def test_events_back_off_exponentially_up_to_an_hour():
    assert [EVENTS.delay(n) for n in range(1, 9)] == [
        MINUTE * m for m in (1, 2, 4, 8, 16, 32, 60, 60)
    ]


def test_events_give_up_at_the_eighth_attempt():
    assert not EVENTS.exhausted(7)
    assert EVENTS.exhausted(8)
    assert EVENTS.next_attempt_at(NOW, 7) == NOW + 60 * MINUTE
    assert EVENTS.next_attempt_at(NOW, 8) is None


def test_recordings_retry_every_minute_for_an_hour_from_the_first_attempt():
    first = NOW - timedelta(minutes=58)
    assert RECORDINGS.next_attempt_at(NOW, 58, first) == NOW + MINUTE
    assert RECORDINGS.next_attempt_at(NOW, 59, first) == NOW + MINUTE
    # Exactly an hour after the first attempt is still in the window; later not.
    assert RECORDINGS.next_attempt_at(NOW + MINUTE, 60, first) == NOW + 2 * MINUTE
    assert RECORDINGS.next_attempt_at(NOW + 2 * MINUTE, 61, first) is None


def test_a_given_wait_replaces_the_delay_and_still_counts_against_the_window():
    first = NOW - timedelta(minutes=30)
    assert RECORDINGS.next_attempt_at(NOW, 3, first, wait=5 * MINUTE) == (
        NOW + 5 * MINUTE
    )
    assert RECORDINGS.next_attempt_at(NOW, 3, first, wait=31 * MINUTE) is None


def test_without_a_first_attempt_the_window_starts_now():
    assert RECORDINGS.next_attempt_at(NOW, 1) == NOW + MINUTE


@given(
    first=st.integers(1, 3600),
    factor=st.sampled_from([1, 1.5, 2, 3]),
    cap=st.integers(1, 7200),
    attempts=st.integers(1, 60),
)
def test_the_wait_never_shrinks_and_never_passes_the_cap(first, factor, cap, attempts):
    rule = Backoff(
        first=timedelta(seconds=first),
        factor=factor,
        cap=timedelta(seconds=cap),
    )
    assert rule.delay(attempts + 1) >= rule.delay(attempts)
    assert rule.delay(attempts) <= timedelta(seconds=cap)
    assert rule.delay(attempts) > timedelta(0)
