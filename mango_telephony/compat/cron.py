"""Reporting a scheduled action's progress on each series.

Both series read ``ir.cron._notify_progress(done=, remaining=)`` (a cron with
work remaining is run again at once). 19.0 documents ``_commit_progress``
instead, which also commits: our queues commit where their own rules say, so
they keep reporting without committing. 19.0 asserts that the progress belongs
to the running cron (``cron_id`` in the context); outside a cron run, and for a
method called with a borrowed context, there is nothing to report.
"""

from . import ODOO_19


def report_progress(env, *, done, remaining):
    """Tell the running scheduled action how much work is done and left."""
    context = env.context
    if not context.get("ir_cron_progress_id"):
        return
    if ODOO_19 and not context.get("cron_id"):
        return
    env["ir.cron"]._notify_progress(done=done, remaining=remaining)
