#!/usr/bin/env bash
# Upgrade in place, measured: `bash scripts/upgrade_check.sh [--from REV] [--series 18.0]`.
#
# 1. the addons of REV (a commit, tag or branch; default HEAD) are installed into a
#    throw-away database of the given Odoo series, with demo data;
# 2. the demo's own setup (scripts/demo_setup.py of REV) fills it through the
#    simulator and the bundled slapd: a month of calls and their events, recordings,
#    the website widget, a directory whose sync is then applied (users, employees,
#    links, SIP accounts);
# 3. every mango_* table is counted and each row hashed (write dates left out);
# 4. this checkout's addons update it (`-u mango_telephony,mango_callback,mango_ldap`);
# 5. counted and hashed again: the script prints both and exits 1 if a row was lost
#    or changed, or the update failed.
# REV's mango_office is the one its Odoo imports (PYTHONPATH), not this checkout's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

main() {
    local rev=HEAD series="${MANGO_ODOO_VERSION:-18.0}"
    while [ $# -gt 0 ]; do
        case "$1" in
            --from) rev="$2"; shift 2 ;;
            --series) series="$2"; shift 2 ;;
            *) mango_die "usage: $0 [--from REV] [--series 18.0|19.0]" ;;
        esac
    done
    cd "$MANGO_ROOT"
    mango_odoo_env "$series"
    mango_apt_install postgresql
    mango_pg_ready
    bash scripts/ldap/ensure-packages.sh slapd >&2

    local work old db sim_port odoo_port key salt odoo_addons sim_pid
    work="$(mktemp -d "${TMPDIR:-/tmp}/mango-upgrade.XXXXXX")"
    mango_on_exit "rm -rf '$work'"
    old="$work/old"
    mkdir -p "$old"
    git archive "$rev" | tar -x -C "$old"
    db="mango_upgrade_${MANGO_ODOO_SERIES//./_}_$$"
    mango_db_throwaway "$db"
    odoo_addons="${MANGO_ODOO_ADDONS_PATH%,*}"
    mapfile -t odoo_cmd < <(mango_odoo_command)
    mapfile -t demo_args < <(mango_odoo_demo_args)
    sim_port="$(mango_free_port)"
    odoo_port="$(mango_free_port)"
    key="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    salt="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    local common=("${MANGO_PG_ARGS[@]}" -d "$db" --data-dir "$work/filestore" --no-http)

    mango_log "Odoo $MANGO_ODOO_RELEASE: installing the addons of $rev ($(git rev-parse --short "$rev")) into $db"
    (cd "$old" && PYTHONPATH="$old" "${odoo_cmd[@]}" --addons-path "$odoo_addons,$old" "${common[@]}" \
        -i mango_telephony,mango_callback,mango_ldap "${demo_args[@]}" --stop-after-init \
        >"$work/install.log" 2>&1) || { tail -n 30 "$work/install.log" >&2; mango_die "install failed"; }

    local slapd_env
    slapd_env="$(bash scripts/ldap/slapd.sh start 2>"$work/slapd.log")" || mango_die "slapd did not start"
    eval "$(grep '^export ' <<<"$slapd_env")"
    mango_on_exit "bash '$MANGO_ROOT/scripts/ldap/slapd.sh' stop '$SLAPD_TEST_DIR' >/dev/null 2>&1"
    export LDAP_URI LDAPS_URI LDAP_BASE_DN LDAP_BIND_DN LDAP_BIND_PW LDAP_CA_FILE
    (cd "$old" && MANGO_SIM_API_KEY="$key" MANGO_SIM_API_SALT="$salt" PYTHONPATH="$old" \
        exec "$MANGO_PY" -m mango_office.simulator --host 127.0.0.1 --port "$sim_port" \
        --webhook-url "http://127.0.0.1:$odoo_port/mango" >"$work/simulator.log" 2>&1) &
    sim_pid=$!
    mango_on_exit "kill $sim_pid 2>/dev/null"
    for _ in $(seq 60); do
        curl -s -o /dev/null "http://127.0.0.1:$sim_port/_sim/" && break
        sleep 0.5
    done

    mango_log "loading the demo history, widget and directory (scripts/demo_setup.py of $rev)"
    (cd "$old" && MANGO_SIM_CONTROL="http://127.0.0.1:$sim_port/_sim" MANGO_DEMO_WIRE_ACCOUNT=1 \
        MANGO_SIM_URL="http://127.0.0.1:$sim_port/vpbx" MANGO_API_KEY="$key" MANGO_API_SALT="$salt" \
        MANGO_ODOO_URL="http://localhost:$odoo_port" MANGO_DEMO_HISTORY_DAYS=10 PYTHONPATH="$old" \
        "${odoo_cmd[@]}" shell --addons-path "$odoo_addons,$old" "${common[@]}" \
        <scripts/demo_setup.py >"$work/setup.log" 2>&1) || { tail -n 30 "$work/setup.log" >&2; mango_die "demo setup failed"; }
    grep '^\[demo-setup\]' "$work/setup.log" >&2 || true
    (cd "$old" && PYTHONPATH="$old" "${odoo_cmd[@]}" shell --addons-path "$odoo_addons,$old" \
        "${common[@]}" >"$work/apply.log" 2>&1 <<'PY'
directory = env["mango.ldap.directory"].sudo().search([], limit=1)
if directory:
    run = directory._mango_run(mode="full", dry_run=False, trigger="manual", commit=False)
    env.cr.commit()
    print("[apply] directory sync", run.state, "links", env["mango.ldap.link"].sudo().search_count([]))
PY
    ) || { tail -n 30 "$work/apply.log" >&2; mango_die "directory sync failed"; }
    grep '^\[apply\]' "$work/apply.log" >&2 || true

    snapshot "$db" >"$work/before.txt"
    mango_log "updating with this checkout's addons (-u; log: $work/update.log kept on failure)"
    local update_rc=0
    "${odoo_cmd[@]}" --addons-path "$(mango_addons_path)" "${common[@]}" \
        -u mango_telephony,mango_callback,mango_ldap --stop-after-init >"$work/update.log" 2>&1 \
        || update_rc=$?
    snapshot "$db" >"$work/after.txt"

    printf '%-45s %10s %10s  %s\n' table "rows before" "rows after" "rows changed"
    LC_ALL=C join "$work/before.txt" "$work/after.txt" | awk '{
        changed = ($3 == $5) ? "" : "CHANGED"; if ($2 != $4) changed = "ROWS LOST OR ADDED"
        printf "%-45s %10s %10s  %s\n", $1, $2, $4, changed }'
    if [ "$update_rc" -ne 0 ] || grep -qE ' (ERROR|CRITICAL) ' "$work/update.log"; then
        grep -E ' (ERROR|CRITICAL) ' "$work/update.log" | cut -c1-300 | head -n 20 >&2
        cp "$work/update.log" "$MANGO_ROOT/.upgrade-check-update.log"
        mango_die "the update failed (exit $update_rc; log: .upgrade-check-update.log)"
    fi
    if ! cmp -s "$work/before.txt" "$work/after.txt"; then
        mango_die "the update lost or changed rows (see above)"
    fi
    echo "Upgrade from $rev on Odoo $MANGO_ODOO_RELEASE: every row of every mango_* table kept, none changed"
}

# "<table> <rows> <md5 of its rows without write dates>" for each mango_* table.
snapshot() {
    psql -X -At -d "$1" <<'SQL'
SELECT format('%s %s %s', c.relname,
       (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I', c.relname), false, true, '')))[1]::text,
       (xpath('/row/h/text()', query_to_xml(format(
           $$SELECT md5(coalesce(string_agg((to_jsonb(x) - 'write_date' - 'write_uid')::text, ',' ORDER BY x::text), '')) AS h FROM %I x$$,
           c.relname), false, true, '')))[1]::text)
  FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
 WHERE s.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE 'mango%'
 ORDER BY c.relname;
SQL
}

main "$@"
