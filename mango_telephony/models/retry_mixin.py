"""The fields and steps every retrying queue shares (``mango.retry.mixin``).

A queue that tries again on its own clock — webhook events, recording fetches —
shows the same three things in its list and form: how many *attempts* were made,
the *next attempt at* time (empty: nothing planned) and the *last error*. When
to try again and when to stop is the queue's :class:`mango_office.retry.Backoff`;
this mixin only records the outcome of each attempt the same way everywhere.
"""

from odoo import fields, models


class MangoRetryMixin(models.AbstractModel):
    _name = "mango.retry.mixin"
    _description = "Retried queue item (attempts, next attempt, last error)"

    attempts = fields.Integer(readonly=True, copy=False)
    next_attempt_at = fields.Datetime(
        string="Next attempt at",
        readonly=True,
        index=True,
        copy=False,
        help="When the next attempt is due; empty when none is planned.",
    )
    last_error = fields.Text(readonly=True, copy=False)

    def _mango_retry_reset_values(self, next_attempt_at=False):
        """A fresh attempt budget, as the lists' "Retry" buttons give."""
        return {
            "attempts": 0,
            "next_attempt_at": next_attempt_at,
            "last_error": False,
        }
