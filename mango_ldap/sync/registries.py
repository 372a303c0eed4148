"""The planner's cross-page registries in PostgreSQL, one run's rows at a time.

A sync of 100,000 people used to keep every taken login, extension and SIP login,
every linked PBX user and every anchor seen in the worker's memory for the whole run:
its size grew with the directory. Here they are rows of ``mango_ldap_run_registry``
keyed by the run, and the worker holds only what one page asks for: the planner says
which keys a page needs (:meth:`prefetch`), they are read in one query per kind, the
page's decisions are written in a few statements when it is over (:meth:`page_done`),
in the transaction that applies the page. A run's rows are deleted when it ends;
rows of runs that died without ending are deleted by the next run.
"""

from psycopg2 import sql
from psycopg2.extras import execute_values

from odoo.tools import SQL

from mango_office.directory.registries import EXTENSION, SEEN, Registries

TABLE = "mango_ldap_run_registry"
# above this many pending writes (the registration of every linked record), write
# them without waiting for the end of the page
_WRITE_EVERY = 5000


def drop_table(cr):
    """Uninstalling: the table is created by SQL, so the ORM leaves it."""
    cr.execute(SQL(f"DROP TABLE IF EXISTS {TABLE}"))


def create_table(cr):
    """The table and its two unique keys: one owner per key for logins, PBX users,
    settled claims, SIP logins and anchors; a set of owners per extension."""
    cr.execute(
        SQL(
            f"""
        CREATE TABLE IF NOT EXISTS {TABLE} (
            run_id integer NOT NULL
                REFERENCES mango_ldap_sync_run(id) ON DELETE CASCADE,
            kind char(1) NOT NULL,
            key varchar NOT NULL,
            owner varchar NOT NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_one_owner
            ON {TABLE} (run_id, kind, key) WHERE kind <> '{EXTENSION}';
        CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_owners
            ON {TABLE} (run_id, kind, key, owner) WHERE kind = '{EXTENSION}';
        """
        )
    )


def _index_condition(kind, alias=None):
    """The condition of the partial unique index that holds ``kind``, spelled out
    so that PostgreSQL sees the index applies (it does not infer it from
    ``kind = 'a'``)."""
    column = f"{alias}.kind" if alias else "kind"
    return (
        f"{column} = '{EXTENSION}'"
        if kind == EXTENSION
        else f"{column} <> '{EXTENSION}'"
    )


class DatabaseRegistries(Registries):
    """:class:`~mango_office.directory.registries.Registries` of one run in the
    database, behind a cache of the current page's keys."""

    def __init__(self, cr, run_id):
        # a cursor of its own on the run's connection (same transaction): its
        # queries never replace the results the run's cursor is reading
        self.cr = cr._cnx.cursor()
        self.run_id = run_id
        self._known = {}  # (kind, key) -> value, None when absent
        self._known_owners = {}  # extension -> set of owners
        self._pending = {}  # (kind, key) -> ("set"|"default"|"drop", value)
        self._pending_owners = {}  # extension -> owners to add

    # -- lifetime ----------------------------------------------------------------------

    def clear(self):
        """Delete this run's rows (the run is over) and any left by runs that died."""
        self._forget()
        self.cr.execute(
            f"""DELETE FROM {TABLE} r WHERE r.run_id = %s OR r.run_id IN (
                    SELECT id FROM mango_ldap_sync_run
                     WHERE state NOT IN ('queued', 'running'))""",
            [self.run_id],
        )

    def close(self):
        self.cr.close()

    def analyze(self):
        """Statistics of the table as it is now. Its rows come and go by the
        hundred thousand within a run: with last hour's statistics PostgreSQL
        would read a run's keys one by one instead of through the index."""
        self._write()
        # A psycopg2 cursor of its own (see __init__), not Odoo's: psycopg2's
        # composition, not odoo.tools.SQL.
        self.cr.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(TABLE)))

    def _forget(self):
        self._known.clear()
        self._known_owners.clear()
        self._pending.clear()
        self._pending_owners.clear()

    # -- paging ------------------------------------------------------------------------

    def prefetch(self, kind, keys):
        if kind == EXTENSION:
            wanted = [k for k in set(keys) if k not in self._known_owners]
        else:
            wanted = [k for k in set(keys) if (kind, k) not in self._known]
        if not wanted:
            return
        found = {}
        self.cr.execute(
            f"SELECT key, owner FROM {TABLE}"
            f" WHERE run_id = %s AND kind = %s AND {_index_condition(kind)}"
            " AND key = ANY(%s)",
            [self.run_id, kind, wanted],
        )
        for key, owner in self.cr.fetchall():
            found.setdefault(key, []).append(owner)
        for key in wanted:
            owners = found.get(key, ())
            if kind == EXTENSION:
                self._known_owners[key] = set(owners) | self._pending_owners.get(
                    key, set()
                )
            else:
                self._learn(kind, key, owners[0] if owners else None)

    def _learn(self, kind, key, stored):
        """What the database holds for ``key``, merged with a pending default."""
        pending = self._pending.get((kind, key))
        if pending is not None and pending[0] == "default":
            if stored is None:
                self._pending[(kind, key)] = ("set", pending[1])
                stored = pending[1]
            else:
                del self._pending[(kind, key)]
        self._known[(kind, key)] = stored

    def page_done(self):
        self._write()
        self._forget()

    def seen_count(self):
        self._write()
        self.cr.execute(
            f"SELECT count(*) FROM {TABLE} WHERE run_id = %s AND kind = %s",
            [self.run_id, SEEN],
        )
        return self.cr.fetchone()[0]

    def unseen_condition(self, anchor_column):
        """SQL true for a row whose anchor this run has not planned."""
        self._write()
        self.analyze()
        return SQL(
            f"NOT EXISTS (SELECT 1 FROM {TABLE} seen WHERE seen.run_id = %s"
            f" AND seen.kind = %s AND {_index_condition(SEEN, 'seen')}"
            " AND seen.key = %s)",
            self.run_id,
            SEEN,
            anchor_column,
        )

    # -- primitives --------------------------------------------------------------------

    def _value(self, kind, key):
        if (kind, key) not in self._known:
            self.prefetch(kind, (key,))
        return self._known[(kind, key)]

    def _put(self, kind, key, value):
        self._known[(kind, key)] = value
        self._pending[(kind, key)] = ("set", value)
        self._write_if_many()

    def _put_default(self, kind, key, value):
        if (kind, key) in self._known:
            if self._known[(kind, key)] is None:
                self._put(kind, key, value)
            return
        # not read yet (registering every linked record): the database decides
        self._pending.setdefault((kind, key), ("default", value))
        self._write_if_many()

    def _drop(self, kind, key):
        self._known[(kind, key)] = None
        self._pending[(kind, key)] = ("drop", None)

    def _owners(self, kind, key):
        if key not in self._known_owners:
            self.prefetch(kind, (key,))
        return set(self._known_owners[key])

    def _add_owner(self, kind, key, owner):
        known = self._known_owners.get(key)
        if known is not None:
            if owner in known:
                return
            known.add(owner)
        self._pending_owners.setdefault(key, set()).add(owner)
        self._write_if_many()

    # -- writing -----------------------------------------------------------------------

    def _write_if_many(self):
        if len(self._pending) + len(self._pending_owners) >= _WRITE_EVERY:
            self._write()
            if len(self._known) + len(self._known_owners) >= 4 * _WRITE_EVERY:
                self._known.clear()
                self._known_owners.clear()

    def _write(self):
        cr, run_id = self.cr, self.run_id
        sets, defaults, drops = [], [], []
        for (kind, key), (op, value) in self._pending.items():
            if op == "set":
                sets.append((run_id, kind, key, value))
            elif op == "default":
                defaults.append((run_id, kind, key, value))
            else:
                drops.append((kind, key))
        owners = [
            (run_id, EXTENSION, key, owner)
            for key, added in self._pending_owners.items()
            for owner in added
        ]
        self._pending.clear()
        self._pending_owners.clear()
        insert = f"INSERT INTO {TABLE} (run_id, kind, key, owner) VALUES %s"
        if drops:
            execute_values(
                cr,
                f"DELETE FROM {TABLE} r USING (VALUES %s) AS d(kind, key)"
                " WHERE r.run_id = {} AND r.kind = d.kind AND r.key = d.key".format(
                    int(run_id)
                ),
                drops,
                page_size=1000,
            )
        if sets:
            execute_values(
                cr,
                insert + f" ON CONFLICT (run_id, kind, key) WHERE kind <> '{EXTENSION}'"
                " DO UPDATE SET owner = EXCLUDED.owner",
                sets,
                page_size=1000,
            )
        if defaults:
            execute_values(
                cr,
                insert + f" ON CONFLICT (run_id, kind, key) WHERE kind <> '{EXTENSION}'"
                " DO NOTHING",
                defaults,
                page_size=1000,
            )
        if owners:
            execute_values(
                cr,
                insert + " ON CONFLICT (run_id, kind, key, owner)"
                f" WHERE kind = '{EXTENSION}' DO NOTHING",
                owners,
                page_size=1000,
            )
