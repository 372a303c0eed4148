"""Calls whose statistics are waiting to be refreshed.

Refreshing the statistics inside the transaction that folded the calls is wrong
under concurrency: Odoo's transactions are REPEATABLE READ, so a second worker
folding a call of the same day still reads the day as its snapshot had it, and
either fails at commit (the whole batch of events rolls back) or writes stale
sums.

So the folding transaction only records here each finished call (and each
earlier missed call a call-back closes), with a plain INSERT (no unique key: two
workers never conflict over a marker). The marker commits with the call, so
nothing is lost if the process dies before the statistics are refreshed. The
refresh runs in its own READ COMMITTED transaction right after the fold commits,
and a cron drains whatever is left (``mango.call.stat._mango_refresh_marked``):
under the call's lock it consumes the markers and applies what the committed
call now counts.

A marker without a call stands for a whole day (``_mango_mark``: the markers of
the version that refreshed days; every call of that day is refreshed).
"""

from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import table_exists


class MangoCallStatDirty(models.Model):
    _name = "mango.call.stat.dirty"
    _description = "Call statistics waiting for a refresh"
    _log_access = False
    _rec_name = "call_id"

    call_id = fields.Integer(
        readonly=True, help="Id of the call; empty for a whole day."
    )
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade"
    )
    date = fields.Date(readonly=True, help="The day to refresh, for a day marker.")

    def init(self):
        if not table_exists(self.env.cr, self._table):
            return
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_dirty_key_idx "
                "ON mango_call_stat_dirty (account_id, date)"
            )
        )
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_dirty_call_idx "
                "ON mango_call_stat_dirty (call_id)"
            )
        )

    def _mango_mark_calls(self, calls):
        """Record (call id, account id) pairs whose statistics must be
        refreshed."""
        calls = sorted({(call, account) for call, account in calls if call and account})
        if not calls:
            return
        self.env.cr.execute(
            SQL(
                "INSERT INTO mango_call_stat_dirty (call_id, account_id) VALUES %s",
                SQL(", ").join(
                    SQL("(%s, %s)", call, account) for call, account in calls
                ),
            )
        )

    def _mango_mark(self, keys):
        """Record (account id, local date) pairs whose every call must be
        refreshed."""
        keys = sorted({(account, day) for account, day in keys if account and day})
        if not keys:
            return
        self.env.cr.execute(
            SQL(
                "INSERT INTO mango_call_stat_dirty (account_id, date) VALUES %s",
                SQL(", ").join(SQL("(%s, %s)", account, day) for account, day in keys),
            )
        )
