#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh`.
#
# 0. Odoo and the project's venv (scripts/odoo_env.py): MANGO_ODOO_SRC, an Odoo
#    that python3 imports, or a cached clone of the official branch;
# 1. the pure suite (tests/, pytest, no Odoo database; the shared rate limiter's
#    tests use the PostgreSQL server of step 2, made ready first) with the
#    venv's Python;
# 2. the addons' Odoo suites on each Odoo series asked for (MANGO_ODOO_VERSIONS,
#    default "18.0 19.0"), installed into a throw-away database (a private PostgreSQL
#    cluster when none is reachable), with Chromium for the tours.
# MANGO_SKIP_ODOO=1 runs the pure suite alone (a failure under CI=true).
# Prints "Total: N passed, N failed, N skipped" last; exits non-zero on any failure.
set -euo pipefail
source "$(dirname "$0")/lib.sh"


# The body is one function, parsed whole before it runs: editing this file
# during a run (bash otherwise reads scripts as it goes) cannot derail the run.
main() {
    cd "$MANGO_ROOT"

    OUT="$MANGO_ROOT/.test-output"
    mkdir -p "$OUT"
    RUN="$(mktemp -d "$OUT/run.XXXXXX")"
    # Logs are kept for a day (a run in progress is never that old); a run's
    # filestore goes at its end.
    find "$OUT" -mindepth 1 -maxdepth 1 -name 'run.*' -mmin +1440 -exec rm -rf {} +
    mango_on_exit "rm -rf '$RUN/filestore'"
    passed=0 failed=0 skipped=0 problems=() summaries=() series_summaries=()
    read -r -a series_list <<<"$(tr ',' ' ' <<<"${MANGO_ODOO_VERSIONS:-${MANGO_ODOO_VERSION:-18.0 19.0}}")"

    # --- 0. Odoo and the venv ------------------------------------------------------
    if [ "${MANGO_SKIP_ODOO:-0}" = 1 ]; then
        mango_odoo_env --core-only
    else
        mango_odoo_env "${series_list[0]}"
    fi
    mango_ensure_ldap_packages
    mango_ensure_compose_cli

    # The pure suite's shared rate limiter is tested against a real PostgreSQL
    # (not an Odoo database): the server is made ready first, on a fresh machine
    # too, and a test that cannot reach it fails instead of skipping.
    mango_apt_install postgresql
    mango_pg_ready
    export MANGO_TEST_PG_REQUIRED=1

    # --- 1. pure suite -----------------------------------------------------------
    mango_log "pure suite: $MANGO_PY -m pytest tests"
    set +e
    "$MANGO_PY" -m pytest tests -q -p no:cacheprovider --junitxml="$RUN/pytest.xml"
    pytest_rc=$?
    set -e
    if [ "$pytest_rc" -eq 5 ]; then
        mango_log "pytest collected no test in tests/"
    elif [ -f "$RUN/pytest.xml" ]; then
        read -r p f s < <("$MANGO_PY" - "$RUN/pytest.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skip, bad, skip)
EOF
        )
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
        summaries+=("pure suite: $p passed, $f failed, $s skipped")
    fi
    if [ "$pytest_rc" -ne 0 ] && [ "$pytest_rc" -ne 5 ]; then
        problems+=("pure suite: pytest exited $pytest_rc")
        # Collection errors and crashes may leave failures uncounted in the XML.
        [ "$failed" -eq 0 ] && failed=1
    fi

    # --- 2. Odoo suites ----------------------------------------------------------
    addons="$(mango_present_addons)"
    if [ -z "$addons" ]; then
        problems+=("no addon (${MANGO_ADDONS_ALL[*]}) in $MANGO_ROOT")
        failed=$((failed + 1))
    elif [ "${MANGO_SKIP_ODOO:-0}" = 1 ]; then
        n_suites=$(tr ',' '\n' <<<"$addons" | wc -l)
        echo "MANGO_SKIP_ODOO=1: the Odoo suites ($addons) were SKIPPED"
        skipped=$((skipped + n_suites))
        summaries+=("Odoo suites: SKIPPED (MANGO_SKIP_ODOO=1)")
        if [ "${CI:-}" = true ]; then
            problems+=("CI=true and the Odoo suites did not run (MANGO_SKIP_ODOO=1): CI must run them")
        fi
    else
        mango_apt_install chromium fonts-liberation
        for series in "${series_list[@]}"; do
            [ "$series" = "$MANGO_ODOO_SERIES" ] || mango_odoo_env "$series"
            run_odoo_suites "$addons"
        done
    fi

    if [ ${#problems[@]} -gt 0 ]; then
        printf 'FAILED: %s\n' "${problems[@]}"
        [ "$failed" -eq 0 ] && failed=1
    fi
    printf '%s\n' "${summaries[@]}"
    if [ ${#series_summaries[@]} -gt 0 ]; then
        line="${series_summaries[0]}"
        for summary in "${series_summaries[@]:1}"; do line+=" · $summary"; done
        echo "$line"
    fi
    echo "Total: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# The addons' Odoo suites on the Odoo that mango_odoo_env set up last, in a
# throw-away database; adds to the run's counters, problems and summaries.
run_odoo_suites() {
    local addons="$1" suite_tags db http_port log odoo_cmd odoo_args odoo_rc addon started demo_args
    local errors warnings summary odoo_skipped not_installed o_failed o_errors o_total o_bad o_passed
    local label="Odoo $MANGO_ODOO_RELEASE"
    suite_tags="$(sed 's/^/\//; s/,/,\//g' <<<"$addons")"
    db="mango_test_${MANGO_ODOO_SERIES//./_}_$$_$RANDOM"
    mango_db_throwaway "$db"
    http_port="$(mango_free_port)"
    mapfile -t odoo_cmd < <(mango_odoo_command)
    mapfile -t demo_args < <(mango_odoo_demo_args)
    log="$RUN/odoo-$MANGO_ODOO_SERIES.log"
    odoo_args=(
        --addons-path "$(mango_addons_path)"
        "${MANGO_PG_ARGS[@]}"
        -d "$db" -i "$addons" "${demo_args[@]}"
        --test-enable --test-tags "$suite_tags"
        --stop-after-init --log-level=test
        --http-interface 127.0.0.1 --http-port "$http_port"
        --max-cron-threads 0 --workers 0
        --data-dir "$RUN/filestore"
    )
    mango_log "$label suites: $addons (Odoo from $MANGO_ODOO_SOURCE; database $db, port $http_port, log $log)"
    mango_log "${odoo_cmd[*]} ${odoo_args[*]}"
    set +e +o pipefail
    # A bounded run: a request thread left waiting on the test cursor would
    # otherwise keep Odoo alive after its last test until CI gives up.
    timeout --kill-after=30 "${MANGO_ODOO_TEST_TIMEOUT:-3600}" \
        "${odoo_cmd[@]}" "${odoo_args[@]}" </dev/null 2>&1 | tee "$log" \
        | grep --line-buffered -E ' (ERROR|CRITICAL|WARNING) |odoo\.addons\.mango_[a-z_]+\.tests|Starting post tests|post-tests in|tests in|odoo\.tests\.result|Modules loaded|loading [0-9]+ modules'
    odoo_rc=${PIPESTATUS[0]}
    set -e -o pipefail

    errors=$(grep -cE '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$log" || true)
    warnings=$(grep -cE '^[0-9-]+ [0-9:,]+ [0-9]+ WARNING ' "$log" || true)
    summary=$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests when loading database' "$log" | tail -n 1 || true)
    odoo_skipped=$(grep -cE ' odoo\.addons\.mango_[a-z_]+\.tests[^:]*: skipped ' "$log" || true)
    not_installed=$(psql -X -d "$db" -Atc "SELECT string_agg(name, ',') FROM ir_module_module WHERE name = ANY(string_to_array('$addons', ',')) AND state <> 'installed'" 2>/dev/null || echo "?")
    if [ -n "$summary" ]; then
        read -r o_failed o_errors o_total < <(awk '{print $1, $3, $6}' <<<"$summary")
    else
        o_failed=0 o_errors=0 o_total=0
    fi
    o_bad=$((o_failed + o_errors))
    o_passed=$((o_total - o_bad - odoo_skipped))
    [ "$o_passed" -lt 0 ] && o_passed=0
    echo "$label suites: $o_total tests ran ($o_passed passed, $o_failed failed, $o_errors errors, $odoo_skipped skipped); $errors ERROR/CRITICAL and $warnings WARNING log lines; exit code $odoo_rc"
    passed=$((passed + o_passed)) skipped=$((skipped + odoo_skipped)) failed=$((failed + o_bad))
    summaries+=("$label: $o_passed passed, $o_failed failed, $o_errors errors, $odoo_skipped skipped (Odoo from $MANGO_ODOO_SOURCE)")
    series_summaries+=("$label: $o_passed passed, $((o_failed + o_errors)) failed, $odoo_skipped skipped")
    [ "$odoo_rc" -ne 0 ] && problems+=("$label: Odoo exited with code $odoo_rc")
    [ "$errors" -gt 0 ] && problems+=("$label: $errors ERROR/CRITICAL line(s) in $log")
    [ -z "$summary" ] && problems+=("$label: no test summary in the Odoo log (did the server start?)")
    [ -n "$not_installed" ] && problems+=("$label: addon(s) not installed: $not_installed")
    # Each addon's own suite must have run: a suite that silently stopped being
    # collected (an import error, a wrong tag) must not pass as green.
    for addon in ${addons//,/ }; do
        ls "$MANGO_ROOT/$addon"/tests/test_*.py >/dev/null 2>&1 || continue
        started=$(grep -cE " odoo\.addons\.$addon\.tests\.[a-z_0-9]+: Starting " "$log" || true)
        [ "$started" -gt 0 ] \
            || problems+=("$label: the $addon suite did not run (no test of odoo.addons.$addon.tests started; see $log)")
    done
    if [ "$errors" -gt 0 ]; then
        echo "--- ERROR/CRITICAL lines (full log: $log) ---"
        grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$log" | cut -c1-400 | head -n 40
    fi
    return 0
}

main "$@"
exit $?
