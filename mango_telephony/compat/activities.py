"""Done activities on each series.

Odoo 18.0 deletes an activity marked done unless its type has ``keep_done``;
19.0 removed the field and always keeps done activities (archived). Our
"Call back" type wants them kept on both.
"""

KEEP_DONE = "keep_done"


def keep_done(activity_type):
    """Make ``activity_type`` keep its done activities (a no-op on 19.0)."""
    if KEEP_DONE in activity_type._fields:
        activity_type[KEEP_DONE] = True
