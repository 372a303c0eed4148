#!/usr/bin/env bash
# The project's demo: `bash scripts/demo.sh`.
#
# Starts the Mango VPBX simulator on 127.0.0.1:8070 and Odoo on
# http://localhost:8069 (login admin / admin) with the three addons and their
# demo data, in a private throw-away PostgreSQL cluster. The company's Mango
# account points at the simulator, and the simulator posts its events to Odoo.
# Ctrl-C stops everything and removes the database.
#
# Options (environment): MANGO_DEMO_PORT (Odoo, 8069), MANGO_SIM_PORT (8070),
# MANGO_SIM_SEED (a simulator seed JSON; default: the simulator's demo PBX),
# MANGO_DEMO_PLAY_EVERY (seconds between the simulator's live demo calls, 20; 0: none),
# MANGO_DEMO_LDAP (1: start the bundled slapd for the directory-sync demo; 0: don't),
# MANGO_ODOO_VERSION (18.0) and MANGO_ODOO_SRC (where Odoo comes from: see scripts/odoo_env.py).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$MANGO_ROOT"

odoo_port="${MANGO_DEMO_PORT:-8069}"
sim_port="${MANGO_SIM_PORT:-8070}"

# Odoo (MANGO_ODOO_VERSION, default 18.0) and the project's venv: MANGO_ODOO_SRC,
# an Odoo that python3 imports, or a cached clone of the official branch.
mango_odoo_env
addons="$(mango_present_addons)"
[ -n "$addons" ] || mango_die "no addon (${MANGO_ADDONS_ALL[*]}) in $MANGO_ROOT"
for port in "$odoo_port" "$sim_port"; do
    python3 -c 'import socket, sys; socket.create_server(("127.0.0.1", int(sys.argv[1]))).close()' "$port" \
        2>/dev/null || mango_die "port $port is taken (set MANGO_DEMO_PORT / MANGO_SIM_PORT)"
done
mango_apt_install postgresql
mango_pg_start_private
run_dir="$MANGO_PG_DIR/demo"
mkdir -p "$run_dir"

# Credentials shared by the simulator and the account: random, never printed.
api_key="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
api_salt="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
seed="${MANGO_SIM_SEED:-}"
if [ -z "$seed" ] && [ -f mango_office/simulator/demo_seed.json ]; then
    seed=mango_office/simulator/demo_seed.json
fi

sim_args=(--host 127.0.0.1 --port "$sim_port" --webhook-url "http://127.0.0.1:$odoo_port/mango")
[ -n "$seed" ] && sim_args+=(--seed "$seed")
play_every="${MANGO_DEMO_PLAY_EVERY:-20}"
if [ "$play_every" != 0 ]; then
    # Customers of mango_telephony's demo data, so the incoming card names them.
    sim_args+=(--play-every "$play_every" --play-extensions 101,102,103
        --play-numbers 74956123450,79164123321,78126432109,79856417710,79266418899,358504123456,79776412030,79991234567)
fi
mango_log "simulator: $MANGO_PY -m mango_office.simulator ${sim_args[*]}"
# The key and salt go through the environment: arguments are visible to anyone in `ps`.
MANGO_SIM_API_KEY="$api_key" MANGO_SIM_API_SALT="$api_salt" \
    "$MANGO_PY" -m mango_office.simulator "${sim_args[@]}" >"$run_dir/simulator.log" 2>&1 &
sim_pid=$!
mango_on_exit "kill $sim_pid 2>/dev/null"

db=mango_demo
mapfile -t odoo_cmd < <(mango_odoo_command)
odoo_common=(
    --addons-path "$(mango_addons_path)" "${MANGO_PG_ARGS[@]}" -d "$db"
    --data-dir "$run_dir/filestore" --max-cron-threads 1
)
mapfile -t demo_args < <(mango_odoo_demo_args)
mango_log "installing $addons with demo data into Odoo $MANGO_ODOO_RELEASE (a few minutes; log: $run_dir/install.log)"
started=$SECONDS
"${odoo_cmd[@]}" "${odoo_common[@]}" -i "$addons" "${demo_args[@]}" --stop-after-init --no-http \
    </dev/null >"$run_dir/install.log" 2>&1 \
    || { tail -n 40 "$run_dir/install.log" >&2; mango_die "installation failed"; }
mango_log "installed in $((SECONDS - started)) s"

# Wire the company's Mango account to the simulator (mango_telephony's fields).

# The directory-sync demo reads the bundled slapd's sample directory (250 people).
if [ "${MANGO_DEMO_LDAP:-1}" = 1 ] && [[ ",$addons," == *,mango_ldap,* ]] \
    && [ -f scripts/ldap/slapd.sh ]; then
    bash scripts/ldap/ensure-packages.sh slapd >&2 || true
    if slapd_env="$(bash scripts/ldap/slapd.sh start 2>"$run_dir/slapd.log")"; then
        eval "$(grep '^export ' <<<"$slapd_env")"
        mango_on_exit "bash scripts/ldap/slapd.sh stop '$SLAPD_TEST_DIR' >/dev/null 2>&1"
        export LDAP_URI LDAPS_URI LDAP_BASE_DN LDAP_BIND_DN LDAP_BIND_PW LDAP_CA_FILE
        mango_log "sample directory: slapd on $LDAPS_URI ($LDAP_SAMPLE_USERS people)"
    else
        mango_log "slapd did not start (see $run_dir/slapd.log): no directory-sync demo"
    fi
fi

# Demo users' extensions, a month of call history played by the simulator and
# ingested as webhook events, the website call-back widget, the LDAP directory.
# First the company's Mango account is pointed at the simulator (the same code
# serves docker-compose's init service).
mango_log "wiring the account to the simulator, loading the demo call history, the widget and directory (log: $run_dir/setup.log)"
started=$SECONDS
MANGO_SIM_CONTROL="http://127.0.0.1:$sim_port/_sim" MANGO_DEMO_WIRE_ACCOUNT=1 \
MANGO_SIM_URL="http://127.0.0.1:$sim_port/vpbx" MANGO_API_KEY="$api_key" MANGO_API_SALT="$api_salt" \
MANGO_ODOO_URL="http://localhost:$odoo_port" \
    "${odoo_cmd[@]}" shell "${odoo_common[@]}" --no-http <scripts/demo_setup.py \
    >"$run_dir/setup.log" 2>&1 \
    || { tail -n 40 "$run_dir/setup.log" >&2; mango_die "demo setup failed"; }
grep '^\[demo-setup\]' "$run_dir/setup.log" >&2 || true
mango_log "demo data ready in $((SECONDS - started)) s"

cat >&2 <<EOF

  Odoo:        http://localhost:$odoo_port   (login admin, password admin)
  Simulator:   http://127.0.0.1:$sim_port/vpbx   control API: http://127.0.0.1:$sim_port/_sim/
  Live calls:  the simulator plays one every ${play_every} s (0 = off; MANGO_DEMO_PLAY_EVERY)
  Screenshots: $MANGO_PY scripts/screenshots.py --url http://localhost:$odoo_port \\
                   --sim-control http://127.0.0.1:$sim_port/_sim
  Try a call:  curl -X POST -H 'Content-Type: application/json' -d '{}' \\
                   http://127.0.0.1:$sim_port/_sim/scenarios/incoming_answered
  Logs:        $run_dir   (Ctrl-C stops everything and deletes the demo)

EOF
"${odoo_cmd[@]}" "${odoo_common[@]}" --http-interface 127.0.0.1 --http-port "$odoo_port" \
    --logfile "$run_dir/odoo.log" </dev/null &
odoo_pid=$!
mango_on_exit "kill $odoo_pid 2>/dev/null; wait $odoo_pid 2>/dev/null"
wait "$odoo_pid"
