"""What each finished call currently adds to the call statistics: the ledger
that makes refreshing a call cost the same whatever the size of the call log.

Recomputing a call's whole day from ``mango_call`` costs as many calls as the
day holds, and a busy account's days only grow. Incrementing the day row by
the new call alone would be fast but not exact: a re-fold, a call that changes
employee or status, a call-back that closes an earlier missed call, or a
refresh running twice would count the call again, or forget what it counted
before.

So each finished call has one row here, its contribution as the statistics
last counted it: its key (local day, account, company, employee, line,
direction) and its counters (1 call, answered/missed/failed, missed and not
called back, called back, wait, talk, time to call back). Refreshing a call
(``mango.call.stat._mango_refresh_calls``) computes its contribution from the
committed call with the same SQL as a rebuild (``contributions_sql``), diffs it
with its row here, and applies only the difference to its day row, to the
weeks and month holding that day, and to its call-back delay row; then this row
becomes the new contribution. A refresh that finds nothing changed changes
nothing, so it stays idempotent, and the tables stay equal to a rebuild: a
rebuild writes this ledger from the calls and sums the day rows from it.

Why a ledger rather than deltas the fold would record: a delta computed in the
fold's REPEATABLE READ snapshot, applied after its commit, is exact only if
every fold's delta is applied once and in order; a refresh that reads the
committed call under the call's lock and compares it with what is counted
converges whatever happened before (a refresh lost with its process, two
refreshes of one call, a call changed by another step or by a foreign key).
The price is one row per finished call (about 160 bytes with its indexes) and
a rebuild that writes them all.

Counters are kept in the types of the day rows, the time totals as ``numeric``
(the call's float seconds cast once): adding and subtracting them is exact in
any order, so a day row reached by any sequence of deltas has the rebuild's
sums to the last digit.

``call_id`` is a plain integer, not a foreign key: a call removed from the log
keeps its row here, so that its contribution can still be subtracted (a
refresh of that id finds no call, hence a contribution of nothing).
"""

from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import table_exists

from mango_office.rules import FINISHED_STATUSES

from .mango_call import DIRECTIONS as CALL_DIRECTIONS
from .mango_call_stat_rollup import mango_derive_once

# The key of a day row, in the order the ledger and the day rows list it.
KEY_COLUMNS = (
    "date",
    "account_id",
    "company_id",
    "user_id",
    "line_number",
    "direction",
)
# Counters of a day row: integers, then time totals (numeric).
COUNT_COLUMNS = (
    "call_count",
    "answered_count",
    "missed_count",
    "failed_count",
    "missed_pending_count",
    "called_back_count",
)
TOTAL_COLUMNS = ("wait_total", "talk_total", "callback_time_total")


def contributions_sql(where, tz):
    """``SELECT`` of the contribution of every finished call with a start time
    matching ``where`` (on ``mango_call c``): ``call_id``, the key columns, then
    the counters, one row per call.

    The one definition of what a call counts, for the rebuild and for the
    refresh of a call alike.

    :param SQL tz: the time zone name of ``c``'s account (see
        ``mango.call.stat._mango_tz_sql``), whose days the statistics count in
    """
    return SQL(
        """
        SELECT c.id AS call_id,
               (c.start_time AT TIME ZONE 'UTC' AT TIME ZONE %(tz)s)::date AS date,
               c.account_id, c.company_id, c.employee_user_id AS user_id,
               c.line_number, c.direction,
               1 AS call_count,
               CASE WHEN c.status = 'answered' THEN 1 ELSE 0 END AS answered_count,
               CASE WHEN c.status = 'missed' THEN 1 ELSE 0 END AS missed_count,
               CASE WHEN c.status = 'failed' THEN 1 ELSE 0 END AS failed_count,
               CASE WHEN c.status = 'missed' AND c.direction = 'incoming'
                         AND c.callback_call_id IS NULL
                    THEN 1 ELSE 0 END AS missed_pending_count,
               CASE WHEN c.status = 'missed' AND c.callback_call_id IS NOT NULL
                    THEN 1 ELSE 0 END AS called_back_count,
               CASE WHEN c.status = 'answered'
                    THEN COALESCE(c.wait_duration, 0) ELSE 0 END::numeric
                   AS wait_total,
               CASE WHEN c.status = 'answered'
                    THEN COALESCE(c.talk_duration, 0) ELSE 0 END::numeric
                   AS talk_total,
               CASE WHEN c.status = 'missed' AND c.callback_call_id IS NOT NULL
                    THEN COALESCE(c.time_to_callback, 0) ELSE 0 END::numeric
                   AS callback_time_total
          FROM mango_call c
         WHERE c.status IN %(finished)s AND c.start_time IS NOT NULL
           AND %(where)s
        """,
        tz=tz,
        finished=FINISHED_STATUSES,
        where=where,
    )


class MangoCallStatContribution(models.Model):
    _name = "mango.call.stat.contribution"
    _description = "Contribution of each finished call to the call statistics"
    _log_access = False
    _rec_name = "date"

    call_id = fields.Integer(
        required=True,
        readonly=True,
        help="Id of the call in the call log (no foreign key: the contribution "
        "of a deleted call can still be subtracted).",
    )
    date = fields.Date(required=True, readonly=True)
    # Foreign keys where the day rows' act on them: an account's rows go with
    # it, an employee deleted is emptied in both, so that the ledger keeps
    # naming the day row that holds each call. The company's would only cost
    # the rebuild a check per row (a company with statistics cannot go).
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade"
    )
    company_id = fields.Integer(required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Employee", readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    direction = fields.Selection(CALL_DIRECTIONS, readonly=True)
    call_count = fields.Integer(string="Calls", readonly=True)
    answered_count = fields.Integer(string="Answered", readonly=True)
    missed_count = fields.Integer(string="Missed", readonly=True)
    failed_count = fields.Integer(string="Failed", readonly=True)
    missed_pending_count = fields.Integer(
        string="Missed, not called back", readonly=True
    )
    called_back_count = fields.Integer(string="Called back", readonly=True)
    wait_total = fields.Float(
        string="Waiting before answer (s)", readonly=True, digits=(16, 0)
    )
    talk_total = fields.Float(string="Talk time (s)", readonly=True, digits=(16, 0))
    callback_time_total = fields.Float(
        string="Time to call back (s)", readonly=True, digits=(16, 0)
    )

    def init(self):
        cr = self.env.cr
        if not table_exists(cr, self._table):
            # Odoo started on newer code without upgrading the module: it calls
            # init() of models whose table is missing, and then reports them.
            return
        # One row per call; a refresh finds it by the call.
        cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS mango_call_stat_contribution_call_idx "
                "ON mango_call_stat_contribution (call_id)"
            )
        )
        # The calls a day counts (a day marker, ``_mango_refresh``).
        cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_contribution_day_idx "
                "ON mango_call_stat_contribution (account_id, date)"
            )
        )
        mango_derive_once(self.env)
