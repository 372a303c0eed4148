"""The rate limiter shared through PostgreSQL (mango_office/ratelimit_pg.py).

The slot rule runs anywhere; the rest needs a PostgreSQL server (``PG*``
variables or the local socket, database ``MANGO_TEST_PG_DATABASE``, default
``postgres``), where each test gets a schema of its own.
"""

import os
import threading
import uuid

import pytest

from mango_office.errors import MangoLimiterUnavailable
from mango_office.ratelimit_pg import (
    BUCKET_TABLE,
    PRODUCT_TABLE,
    SCHEMA,
    SharedRateLimiter,
    product_digest,
    prune_idle_products,
    take_slot,
)

# --- the slot rule ------------------------------------------------------------


def test_empty_slots_fill_up_to_the_limit():
    slots, index, wait = take_slot([], 2, 1.0, 100.0)
    assert (slots, index, wait) == ([100.0], 0, 0.0)
    slots, index, wait = take_slot(slots, 2, 1.0, 100.1)
    assert (slots, index, wait) == ([100.0, 100.1], 1, 0.0)


def test_full_slots_wait_for_the_oldest_to_be_a_period_old():
    slots, index, wait = take_slot([100.0, 100.5], 2, 1.0, 100.6)
    assert slots is None and index is None
    assert wait == pytest.approx(0.4)


def test_the_oldest_slot_is_taken_once_a_period_old():
    slots, index, wait = take_slot([100.5, 100.0, 100.7], 3, 1.0, 101.0)
    assert (slots, index, wait) == ([100.5, 101.0, 100.7], 1, 0.0)


def test_a_slot_in_the_future_never_makes_a_wait_longer_than_the_period():
    # The database's clock was set back an hour: the slot must not block an hour.
    slots, _index, wait = take_slot([3700.0], 1, 2.0, 100.0)
    assert slots is None and wait == pytest.approx(2.0)


def test_a_lowered_limit_keeps_the_newest_slots():
    slots, _index, wait = take_slot([1.0, 5.0, 3.0, 4.0], 2, 10.0, 6.0)
    assert slots is None and wait == pytest.approx(8.0)  # 4.0 + 10 - 6


def test_product_digest_names_address_and_key_without_holding_them():
    digest = product_digest("https://app.mango-office.ru/vpbx/", "secret-key")
    assert digest == product_digest("https://app.mango-office.ru/vpbx", "secret-key ")
    assert digest != product_digest("https://app.mango-office.ru/vpbx", "other-key")
    assert digest != product_digest("http://127.0.0.1:9/vpbx", "secret-key")
    assert "secret" not in digest and len(digest) == 64


# --- against PostgreSQL ---------------------------------------------------------

psycopg2 = pytest.importorskip("psycopg2")


class Transactions:
    """``connect`` for the limiter: each call one transaction on a connection of
    its own that starts REPEATABLE READ, as Odoo's cursors do."""

    def __init__(self, database, schema):
        self.database = database
        self.schema = schema
        self.opened = 0

    def __call__(self):
        return _Transaction(self)


class _Transaction:
    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        self.connection = psycopg2.connect(
            dbname=self.owner.database, options=f"-c search_path={self.owner.schema}"
        )
        self.connection.set_session(isolation_level="REPEATABLE READ")
        self.owner.opened += 1
        return self.connection.cursor()

    def __exit__(self, exc_type, *_exc):
        try:
            if exc_type is None:
                self.connection.commit()
            else:
                self.connection.rollback()
        finally:
            self.connection.close()


@pytest.fixture
def connect():
    database = os.environ.get("MANGO_TEST_PG_DATABASE", "postgres")
    try:
        admin = psycopg2.connect(dbname=database)
    except psycopg2.OperationalError as exc:
        # scripts/test.sh makes a server ready before this suite and says so:
        # there, a missing server is a failure, not a test quietly not run.
        if os.environ.get("MANGO_TEST_PG_REQUIRED") == "1":
            pytest.fail(f"no PostgreSQL to test against: {exc}")
        pytest.skip(f"no PostgreSQL to test against: {exc}")
    admin.autocommit = True
    schema = f"mango_ratelimit_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cr:
        cr.execute(f"CREATE SCHEMA {schema}")
        cr.execute(f"SET search_path = {schema}")
        cr.execute(SCHEMA)
    try:
        yield Transactions(database, schema)
    finally:
        with admin.cursor() as cr:
            cr.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


PRODUCT = product_digest("http://127.0.0.1/vpbx", "product-a")
OTHER = product_digest("http://127.0.0.1/vpbx", "product-b")


def busiest_window(times, period):
    """The most tokens any window of ``period`` seconds holds."""
    times = sorted(times)
    return max(
        sum(1 for t in times[i:] if t < start + period) for i, start in enumerate(times)
    )


def test_two_limiters_of_one_product_never_exceed_the_limit_together(connect):
    limits = {"callback": (3, 0.3)}
    limiters = [SharedRateLimiter(connect, PRODUCT, limits) for _ in range(2)]
    times, failures = [], []
    lock = threading.Lock()

    def send(limiter):
        try:
            for _ in range(5):
                ticket = limiter.acquire("commands/callback")
                spent = limiter.release(ticket)
                with lock:
                    times.append(spent)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    threads = [
        threading.Thread(target=send, args=(limiter,))
        for limiter in limiters
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert len(times) == 30
    # The tokens' times on the database clock: at most 3 in any 0.3 s.
    assert busiest_window(times, 0.3) == 3


def test_try_acquire_refuses_once_the_other_limiter_spent_the_bucket(connect):
    first = SharedRateLimiter(connect, PRODUCT, {"balance": (2, 60.0)})
    second = SharedRateLimiter(connect, PRODUCT, {"balance": (2, 60.0)})
    assert first.try_acquire("account/balance") is not None
    assert second.try_acquire("account/balance") is not None
    assert first.try_acquire("account/balance") is None
    assert second.try_acquire("account/balance") is None
    # Another class and another product have their own buckets.
    assert second.try_acquire("commands/callback") is not None
    other = SharedRateLimiter(connect, OTHER, {"balance": (2, 60.0)})
    assert other.try_acquire("account/balance") is not None


def test_a_waiting_limiter_holds_no_lock_while_it_sleeps(connect):
    limits = {"balance": (1, 0.2)}
    checks = []

    def sleep(seconds):
        # Another worker can take the bucket's lock meanwhile: we hold nothing.
        with connect() as cr:
            cr.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"{PRODUCT}|balance"],
            )
            free = cr.fetchone()[0]
            cr.execute(f"SELECT id FROM {BUCKET_TABLE} FOR UPDATE NOWAIT")
            checks.append((seconds, free, len(cr.fetchall())))
        threading.Event().wait(seconds)

    limiter = SharedRateLimiter(connect, PRODUCT, limits, sleep=sleep)
    limiter.release(limiter.acquire("account/balance"))
    limiter.release(limiter.acquire("account/balance"))
    assert checks
    assert all(
        0 < seconds <= 0.2 and free and rows == 1 for seconds, free, rows in checks
    )


def test_lockout_and_strike_are_seen_by_every_limiter_of_the_product(connect):
    first = SharedRateLimiter(connect, PRODUCT)
    second = SharedRateLimiter(connect, PRODUCT)
    other = SharedRateLimiter(connect, OTHER)
    assert second.locked_for() == 0 and second.invalid_strike_for() == 0
    first.lock_out(120)
    first.note_invalid()
    assert 110 < second.locked_for() <= 120
    assert 110 < second.invalid_strike_for() <= 120
    assert 0 < second.invalid_strike_for(window=5) <= 5
    assert other.locked_for() == 0 and other.invalid_strike_for() == 0
    # A shorter lockout reported later does not shorten the one on record.
    second.lock_out(5)
    assert first.locked_for() > 110
    second.forget()
    assert first.locked_for() == 0 and first.invalid_strike_for() == 0


def test_a_limiter_without_its_database_refuses_to_send(caplog):
    def connect():
        raise psycopg2.OperationalError("connection refused")

    limiter = SharedRateLimiter(connect, PRODUCT)
    for ask in (
        lambda: limiter.acquire("commands/callback"),
        lambda: limiter.try_acquire("commands/callback"),
        limiter.locked_for,
        limiter.invalid_strike_for,
    ):
        with pytest.raises(MangoLimiterUnavailable, match="not sent"):
            ask()
    # After an answer came back, Mango's answer still reaches the caller.
    ticket = ["callback", 1, 0, 100.0]
    assert limiter.release(ticket) == 100.0
    limiter.lock_out(120)
    limiter.note_invalid()
    assert "shared rate limiter" in caplog.text


def test_each_operation_is_one_short_transaction(connect):
    limiter = SharedRateLimiter(connect, PRODUCT)
    ticket = limiter.acquire("commands/callback")
    limiter.release(ticket)
    limiter.locked_for()
    assert connect.opened == 3


def test_pruning_forgets_only_the_products_nobody_uses(connect):
    used = SharedRateLimiter(connect, PRODUCT)
    idle = SharedRateLimiter(connect, OTHER)
    for limiter in (used, idle):
        limiter.release(limiter.acquire("commands/callback"))
    idle.note_invalid()
    # The idle product's last request and refusal were two hours ago.
    with connect() as cr:
        cr.execute(
            f"""UPDATE {BUCKET_TABLE} b SET spent = '[1.0]' FROM {PRODUCT_TABLE} p
                 WHERE p.id = b.product_id AND p.product = %s""",
            [OTHER],
        )
        cr.execute(
            f"UPDATE {PRODUCT_TABLE} SET last_invalid = 1.0 WHERE product = %s",
            [OTHER],
        )
    assert prune_idle_products(connect, idle=3600) == 1
    with connect() as cr:
        cr.execute(f"SELECT product FROM {PRODUCT_TABLE}")
        assert cr.fetchall() == [(PRODUCT,)]
    # It comes back with its next request.
    assert idle.try_acquire("commands/callback") is not None
