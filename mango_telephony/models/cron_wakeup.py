"""Wake Odoo's cron workers for the event queue at the cost of one round trip.

Odoo's ``ir.cron._notifydb()`` opens a brand-new connection to the ``postgres``
database every time (the pool never keeps connections to that database), which
costs a backend fork, several milliseconds, on every webhook. Each worker process
keeps one autocommit connection for the notification instead; a notification
lost on a crash is harmless, so it does not wait for a disk flush either.

If the notification cannot be sent, nothing is lost: the ``ir_cron_trigger`` row
is committed with the event, and the cron worker picks it up at its next wake-up.
"""

import logging
import os
import threading

import psycopg2

from odoo.sql_db import connection_info_for
from odoo.tools import SQL

from odoo.addons.base.models.ir_cron import ODOO_NOTIFY_FUNCTION

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
# (pid, connection): a forked worker opens its own, never using its parent's.
_connection = [None, None]


def _open():
    _dbname, info = connection_info_for("postgres")
    connection = psycopg2.connect(**info)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    return connection


def _current_connection():
    pid, connection = _connection
    if pid != os.getpid() or connection is None or connection.closed:
        _forget_connection()
        connection = _open()
        _connection[:] = [os.getpid(), connection]
    return connection


def _forget_connection():
    pid, connection = _connection
    _connection[:] = [None, None]
    # Closing a connection inherited through fork() would end the parent's
    # session too (psycopg2 only spares it when the object is collected).
    if connection is not None and pid == os.getpid():
        connection.close()


def wake_cron_workers(dbname):
    """Tell the cron workers that a job of ``dbname`` has a trigger due now."""
    query = SQL(
        "SELECT %s('cron_trigger', %s)", SQL.identifier(ODOO_NOTIFY_FUNCTION), dbname
    )
    with _lock:
        for attempt in (1, 2):
            try:
                connection = _current_connection()
                with connection.cursor() as cursor:
                    cursor.execute(query.code, query.params)
                return True
            except psycopg2.Error as exc:
                # A connection closed by the server (restart, idle timeout) is
                # reopened once; anything else waits for the cron's own wake-up.
                _forget_connection()
                if attempt == 2:
                    _logger.warning(
                        "Could not wake the cron workers (%s); the event queue "
                        "is processed at their next regular wake-up.",
                        type(exc).__name__,
                    )
    return False


def wake_cron_workers_later(dbname, seconds):
    """Wake the cron workers of ``dbname`` in ``seconds``, from this process.

    A trigger due in the future wakes nobody: an idle cron worker looks at the
    triggers again only at its next regular wake-up, up to a minute later. An
    event deferred for a few seconds (its call was being folded by another
    worker) would wait that minute; a timer sends the notification when the
    trigger is due. A timer lost with its process leaves the regular wake-up.
    """
    timer = threading.Timer(seconds, wake_cron_workers, args=(dbname,))
    timer.daemon = True
    timer.start()
    return timer
