#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh`.
#
# 1. the pure suite (tests/, pytest, no database) on every machine;
# 2. when Odoo 18 is importable by python3: the addons' Odoo suites, installed
#    into a throw-away database (a private PostgreSQL cluster when none is
#    reachable), with Chromium for the tours.
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
    passed=0 failed=0 skipped=0 problems=()

    mango_ensure_python_requirements
    mango_ensure_ldap_packages
    mango_ensure_compose_cli

    # --- 1. pure suite -----------------------------------------------------------
    mango_log "pure suite: python3 -m pytest tests"
    set +e
    python3 -m pytest tests -q -p no:cacheprovider --junitxml="$RUN/pytest.xml"
    pytest_rc=$?
    set -e
    if [ "$pytest_rc" -eq 5 ]; then
        mango_log "pytest collected no test in tests/"
    elif [ -f "$RUN/pytest.xml" ]; then
        read -r p f s < <(python3 - "$RUN/pytest.xml" <<'EOF'
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
    fi
    if [ "$pytest_rc" -ne 0 ] && [ "$pytest_rc" -ne 5 ]; then
        problems+=("pure suite: pytest exited $pytest_rc")
        # Collection errors and crashes may leave failures uncounted in the XML.
        [ "$failed" -eq 0 ] && failed=1
    fi

    # --- 2. Odoo suites ----------------------------------------------------------
    addons="$(mango_present_addons)"
    suite_tags="/mango_telephony,/mango_callback,/mango_ldap"
    if [ -z "$addons" ]; then
        problems+=("no addon (${MANGO_ADDONS_ALL[*]}) in $MANGO_ROOT")
        failed=$((failed + 1))
    elif ! mango_odoo_importable; then
        n_suites=$(tr ',' '\n' <<<"$addons" | wc -l)
        echo "Odoo 18 is not importable: the Odoo suites (mango_telephony, mango_callback, mango_ldap) were SKIPPED"
        skipped=$((skipped + n_suites))
    else
        suite_tags="$(sed 's/^/\//; s/,/,\//g' <<<"$addons")"
        mango_apt_install postgresql chromium fonts-liberation
        mango_pg_ready
        db="mango_test_$$_$RANDOM"
        mango_db_throwaway "$db"
        http_port="$(mango_free_port)"
        mapfile -t odoo_cmd < <(mango_odoo_command)
        log="$RUN/odoo.log"
        odoo_args=(
            --addons-path "$(mango_addons_path)"
            "${MANGO_PG_ARGS[@]}"
            -d "$db" -i "$addons"
            --test-enable --test-tags "$suite_tags"
            --stop-after-init --log-level=test
            --http-interface 127.0.0.1 --http-port "$http_port"
            --max-cron-threads 0 --workers 0
            --data-dir "$RUN/filestore"
        )
        mango_log "Odoo $(python3 -c 'import odoo.release as r; print(r.version)') suites: $addons (database $db, port $http_port, log $log)"
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
        echo "Odoo suites: $o_total tests ran ($o_passed passed, $o_failed failed, $o_errors errors, $odoo_skipped skipped); $errors ERROR/CRITICAL and $warnings WARNING log lines; exit code $odoo_rc"
        passed=$((passed + o_passed)) skipped=$((skipped + odoo_skipped)) failed=$((failed + o_bad))
        [ "$odoo_rc" -ne 0 ] && problems+=("Odoo exited with code $odoo_rc")
        [ "$errors" -gt 0 ] && problems+=("$errors ERROR/CRITICAL line(s) in $log")
        [ -z "$summary" ] && problems+=("no test summary in the Odoo log (did the server start?)")
        [ -n "$not_installed" ] && problems+=("addon(s) not installed: $not_installed")
        if [ "$o_total" -eq 0 ] && ls "$MANGO_ROOT"/mango_*/tests/test_*.py >/dev/null 2>&1; then
            problems+=("the addons have tests but Odoo ran none")
        fi
        if [ "$errors" -gt 0 ]; then
            echo "--- ERROR/CRITICAL lines (full log: $log) ---"
            grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$log" | cut -c1-400 | head -n 40
        fi
    fi

    if [ ${#problems[@]} -gt 0 ]; then
        printf 'FAILED: %s\n' "${problems[@]}"
        [ "$failed" -eq 0 ] && failed=1
    fi
    echo "Total: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

main "$@"
exit $?
