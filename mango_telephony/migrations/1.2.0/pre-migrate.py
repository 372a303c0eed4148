"""The retried queues share their field names (mango.retry.mixin).

``mango.event.error`` becomes ``last_error``, as on recordings: the column is
renamed before the registry loads, so no event's error is lost (``error`` stays,
as a non-stored alias).
"""


def migrate(cr, version):
    cr.execute(
        """
        SELECT column_name FROM information_schema.columns
         WHERE table_name = 'mango_event' AND column_name IN ('error', 'last_error')
        """
    )
    columns = {row[0] for row in cr.fetchall()}
    if "error" in columns and "last_error" not in columns:
        cr.execute("ALTER TABLE mango_event RENAME COLUMN error TO last_error")
