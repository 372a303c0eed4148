"""The contacts' phone keys: the narrow table caller identification reads.

Why a table of its own: at ten million contacts a lookup on res_partner itself
descended two text indexes (``mango_phone_e164``, ``mango_mobile_e164``) and
then read the contact's row for its commercial partner, company and shared
flag: five to seven pages, most of them outside PostgreSQL's buffer cache
(each index is larger than the default ``shared_buffers``), and its p95 swung
with whatever else the machine cached. Here each active contact has one row
per number it carries, keyed by the number's digits as a bigint
(``mango_office.phones.e164_key``), and one covering index holds everything the
lookup returns: one descent, an index-only scan, one leaf page.

The rows are kept by triggers on res_partner rather than by the ORM: every
writer of a contact (the ORM's flush, an import, SQL of another module) goes
through them, so the table is exact by construction, and a write that touches
none of the columns read here does not run them. A bulk load that bypasses
triggers (``session_replication_role = replica``, as the benchmark's) calls
``mango_partner_phone_refill()`` afterwards.

Created by ``res.partner.init()`` (install and every update: the table is filled
once, when it is first made); dropped by the uninstall hook, before the
columns its triggers read are.
"""

from odoo.tools import SQL

TABLE = "mango_partner_phone"
INDEX = "mango_partner_phone_number"

# The SQL twin of mango_office.phones.e164_key: the same pattern, the same number.
_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION mango_phone_key(e164 varchar) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $mango$
    SELECT CASE WHEN e164 ~ '^\+[1-9][0-9]{0,17}$'
                THEN substr(e164, 2)::bigint END
$mango$;

-- A contact's rows follow its numbers, its archiving and the columns the
-- lookup returns. The rows removed are those of the old numbers: the table
-- holds exactly those (the refill and this trigger keep it so), and no second
-- index on the contact is needed.
CREATE OR REPLACE FUNCTION mango_partner_phone_sync() RETURNS trigger
LANGUAGE plpgsql AS $mango$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM mango_partner_phone
         WHERE number IN (mango_phone_key(OLD.mango_phone_e164),
                          mango_phone_key(OLD.mango_mobile_e164))
           AND partner_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.active THEN
        INSERT INTO mango_partner_phone
               (number, partner_id, commercial_partner_id, company_id, partner_share)
        SELECT DISTINCT key, NEW.id, NEW.commercial_partner_id, NEW.company_id,
               NEW.partner_share
          FROM unnest(ARRAY[mango_phone_key(NEW.mango_phone_e164),
                            mango_phone_key(NEW.mango_mobile_e164)]) AS key
         WHERE key IS NOT NULL;
    END IF;
    RETURN NULL;
END
$mango$;

-- Every row from res_partner at once, the index built after the rows (a bulk
-- build, not ten million inserts into it). Returns the number of rows.
CREATE OR REPLACE FUNCTION mango_partner_phone_refill() RETURNS bigint
LANGUAGE plpgsql AS $mango$
DECLARE
    filled bigint;
BEGIN
    DROP INDEX IF EXISTS mango_partner_phone_number;
    TRUNCATE mango_partner_phone;
    INSERT INTO mango_partner_phone
           (number, partner_id, commercial_partner_id, company_id, partner_share)
    SELECT number, id, commercial_partner_id, company_id, partner_share
      FROM (SELECT mango_phone_key(mango_phone_e164) AS number, id,
                   commercial_partner_id, company_id, partner_share
              FROM res_partner
             WHERE active
            UNION ALL
            SELECT mango_phone_key(mango_mobile_e164), id,
                   commercial_partner_id, company_id, partner_share
              FROM res_partner
             WHERE active
               AND mango_phone_key(mango_mobile_e164)
                   IS DISTINCT FROM mango_phone_key(mango_phone_e164)) AS keys
     WHERE number IS NOT NULL;
    GET DIAGNOSTICS filled = ROW_COUNT;
    CREATE UNIQUE INDEX mango_partner_phone_number
        ON mango_partner_phone (number, partner_id)
        INCLUDE (commercial_partner_id, company_id, partner_share);
    RETURN filled;
END
$mango$;

-- The lookup itself, in PL/pgSQL so that its plan is made once per
-- connection: planning the statement afresh on every call costs more than
-- running it (measured: +35 us at the median), and a prepared statement would
-- not survive Odoo's pool (DISCARD ALL on every borrow) nor a transaction-mode
-- pooler. Two statements, so that neither plans for the other's filter.
DROP FUNCTION IF EXISTS mango_partners_by_phone(varchar, integer);
DROP FUNCTION IF EXISTS mango_partner_ids_by_phone(varchar, integer);
CREATE OR REPLACE FUNCTION mango_partners_by_phone(
    wanted_number bigint, wanted_company integer
) RETURNS TABLE (
    id integer,
    commercial_partner_id integer,
    company_id integer,
    partner_share boolean
) LANGUAGE plpgsql STABLE AS $mango$
BEGIN
    IF wanted_company IS NULL THEN
        RETURN QUERY
            SELECT keys.partner_id, keys.commercial_partner_id,
                   keys.company_id, keys.partner_share
              FROM mango_partner_phone keys
             WHERE keys.number = wanted_number
             ORDER BY keys.partner_id
             LIMIT 20;
    ELSE
        RETURN QUERY
            SELECT keys.partner_id, keys.commercial_partner_id,
                   keys.company_id, keys.partner_share
              FROM mango_partner_phone keys
             WHERE keys.number = wanted_number
               AND (keys.company_id IS NULL OR keys.company_id = wanted_company)
             ORDER BY keys.partner_id
             LIMIT 20;
    END IF;
END
$mango$;
"""

_TABLE = """
CREATE TABLE mango_partner_phone (
    number bigint NOT NULL,
    partner_id integer NOT NULL,
    commercial_partner_id integer,
    company_id integer,
    partner_share boolean
)
"""

_TRIGGERS = """
DROP TRIGGER IF EXISTS mango_partner_phone_insert ON res_partner;
DROP TRIGGER IF EXISTS mango_partner_phone_update ON res_partner;
DROP TRIGGER IF EXISTS mango_partner_phone_delete ON res_partner;
CREATE TRIGGER mango_partner_phone_insert AFTER INSERT ON res_partner
    FOR EACH ROW
    WHEN (NEW.active AND (NEW.mango_phone_e164 IS NOT NULL
                          OR NEW.mango_mobile_e164 IS NOT NULL))
    EXECUTE FUNCTION mango_partner_phone_sync();
CREATE TRIGGER mango_partner_phone_update
    AFTER UPDATE OF mango_phone_e164, mango_mobile_e164, active,
                    commercial_partner_id, company_id, partner_share
    ON res_partner
    FOR EACH ROW
    WHEN ((OLD.mango_phone_e164, OLD.mango_mobile_e164, OLD.active,
           OLD.commercial_partner_id, OLD.company_id, OLD.partner_share)
          IS DISTINCT FROM
          (NEW.mango_phone_e164, NEW.mango_mobile_e164, NEW.active,
           NEW.commercial_partner_id, NEW.company_id, NEW.partner_share))
    EXECUTE FUNCTION mango_partner_phone_sync();
CREATE TRIGGER mango_partner_phone_delete AFTER DELETE ON res_partner
    FOR EACH ROW
    WHEN (OLD.mango_phone_e164 IS NOT NULL OR OLD.mango_mobile_e164 IS NOT NULL)
    EXECUTE FUNCTION mango_partner_phone_sync();
"""


def ensure_partner_phone_keys(cr):
    """Create (or bring up to date) the functions, the table and its triggers;
    fill the table the first time it is made."""
    cr.execute(SQL("SELECT to_regclass(%s) IS NULL", TABLE))
    missing = cr.fetchone()[0]
    cr.execute(SQL(_FUNCTIONS))
    if missing:
        cr.execute(SQL(_TABLE))
        cr.execute(SQL("SELECT mango_partner_phone_refill()"))
    cr.execute(SQL(_TRIGGERS))


def drop_partner_phone_keys(cr):
    """Everything ``ensure_partner_phone_keys`` made, triggers first: they read
    columns that uninstalling drops."""
    cr.execute(
        SQL(
            """
            DROP TRIGGER IF EXISTS mango_partner_phone_insert ON res_partner;
            DROP TRIGGER IF EXISTS mango_partner_phone_update ON res_partner;
            DROP TRIGGER IF EXISTS mango_partner_phone_delete ON res_partner;
            DROP FUNCTION IF EXISTS mango_partner_phone_sync();
            DROP FUNCTION IF EXISTS mango_partner_phone_refill();
            DROP FUNCTION IF EXISTS mango_partners_by_phone(bigint, integer);
            DROP FUNCTION IF EXISTS mango_partners_by_phone(varchar, integer);
            DROP FUNCTION IF EXISTS mango_partner_ids_by_phone(varchar, integer);
            DROP TABLE IF EXISTS mango_partner_phone;
            DROP FUNCTION IF EXISTS mango_phone_key(varchar);
            """
        )
    )
