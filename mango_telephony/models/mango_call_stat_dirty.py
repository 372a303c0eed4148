"""Days whose statistics are waiting to be recomputed.

Recomputing a day inside the transaction that folded its calls is wrong under
concurrency: Odoo's transactions are REPEATABLE READ, so a second worker folding
a call of the same day still reads the day as its snapshot had it, and either
fails at commit (the whole batch of events rolls back) or writes stale sums.

So the folding transaction only records the (account, local day) of each
finished call here, with a plain INSERT (no unique key: two workers never
conflict over a marker). The marker commits with the calls, so nothing is lost
if the process dies before the statistics are refreshed. The refresh runs in
its own READ COMMITTED transaction right after the fold commits, and a cron
drains whatever is left (``mango.call.stat._mango_refresh_marked``): under the
day's lock it consumes the markers and recomputes from the committed calls.
"""

from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import table_exists


class MangoCallStatDirty(models.Model):
    _name = "mango.call.stat.dirty"
    _description = "Call statistics days to refresh"
    _log_access = False
    _rec_name = "date"

    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade"
    )
    date = fields.Date(required=True, readonly=True)

    def init(self):
        if not table_exists(self.env.cr, self._table):
            return
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_dirty_key_idx "
                "ON mango_call_stat_dirty (account_id, date)"
            )
        )

    def _mango_mark(self, keys):
        """Record (account id, local date) pairs whose day must be refreshed."""
        keys = sorted({(account, day) for account, day in keys if account and day})
        if not keys:
            return
        self.env.cr.execute(
            SQL(
                "INSERT INTO mango_call_stat_dirty (account_id, date) VALUES %s",
                SQL(", ").join(SQL("(%s, %s)", account, day) for account, day in keys),
            )
        )
