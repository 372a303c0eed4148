# Shared helpers for scripts/test.sh and scripts/demo.sh (sourced, not run).
#
# Everything here works on a fresh Debian machine as root with no services
# running (what CI gives), and on a developer's machine with PostgreSQL already
# up. Nothing depends on variables set by a previous session.

# Debian keeps slapd, slapadd, samba and friends in sbin, which a non-login
# shell (cron, CI) may not have on its PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

MANGO_ADDONS_ALL=(mango_telephony mango_callback mango_ldap)
MANGO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANGO_CLEANUPS=()

mango_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
mango_die() { mango_log "ERROR: $*"; exit 1; }

# Cleanups run in reverse order at exit, whatever the exit path.
mango_on_exit() { MANGO_CLEANUPS+=("$1"); }
_mango_run_cleanups() {
    local i
    for ((i = ${#MANGO_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${MANGO_CLEANUPS[i]}" || true
    done
}
trap _mango_run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Addons of this repo that exist in the tree, comma-separated.
mango_present_addons() {
    local addon present=()
    for addon in "${MANGO_ADDONS_ALL[@]}"; do
        [ -f "$MANGO_ROOT/$addon/__manifest__.py" ] && present+=("$addon")
    done
    (IFS=,; echo "${present[*]}")
}

mango_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Installs Debian packages that are missing (apt-get update first, once).
mango_apt_install() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        mango_log "missing Debian packages (${missing[*]}) and not root: install them first"
        return 1
    fi
    mango_log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_MANGO_APT_UPDATED:-}" ]; then
        apt-get update -qq >&2 || mango_log "apt-get update failed; trying the cached lists"
        _MANGO_APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || mango_die "apt-get install ${missing[*]} failed"
}

# The Python the scripts use, and the Odoo it imports: scripts/odoo_env.py finds
# Odoo's source (MANGO_ODOO_SRC, an installed Odoo, or a cached clone of the
# official branch) and builds the project's venv (.venv/odoo-<series>) with Odoo's
# and the project's requirements. Sets MANGO_PY, MANGO_ODOO_SERIES,
# MANGO_ODOO_RELEASE, MANGO_ODOO_BIN, MANGO_ODOO_SOURCE and MANGO_ODOO_ADDONS_PATH.
# Usage: mango_odoo_env [series] | mango_odoo_env --core-only
mango_odoo_env() {
    local series="${MANGO_ODOO_VERSION:-18.0}" args=() assignments venv
    if [ "${1:-}" = --core-only ]; then
        args=(--core-only)
        venv="$MANGO_ROOT/.venv/core"
    else
        series="${1:-$series}"
        args=(--series "$series")
        venv="$MANGO_ROOT/.venv/odoo-$series"
    fi
    command -v python3 >/dev/null 2>&1 || mango_die "python3 not found: install Python 3.10 or newer"
    if [ ! -f "$venv/mango-venv.json" ]; then
        # What a first build needs: git for a clone, xz for the archive, and the
        # headers psycopg2 and python-ldap compile against. Not root: pip says what is missing.
        mango_apt_install git xz-utils gcc libpq-dev libldap2-dev libsasl2-dev \
            || mango_log "continuing without them"
    fi
    assignments="$(python3 "$MANGO_ROOT/scripts/odoo_env.py" "${args[@]}")" || exit 2
    eval "$assignments"
    export MANGO_PY MANGO_ODOO_SERIES MANGO_ODOO_SOURCE
}

# Hook for the LDAP test servers' packages (slapd, Samba AD), owned by mango_ldap.
mango_ensure_ldap_packages() {
    if [ -f "$MANGO_ROOT/scripts/ldap/ensure-packages.sh" ]; then
        bash "$MANGO_ROOT/scripts/ldap/ensure-packages.sh" >&2
    fi
}

# A Compose CLI for tests/test_docker_compose.py (`config` needs no Docker engine):
# Debian's docker-compose when neither it nor the v2 plugin is there. Optional:
# without root or apt the test is reported as skipped.
mango_ensure_compose_cli() {
    if command -v docker-compose >/dev/null 2>&1 \
        || { command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }; then
        return 0
    fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        (mango_apt_install docker-compose) || mango_log "docker-compose not installed; its test will be skipped"
    fi
}

# Prints the command (one word per line) that starts Odoo's CLI with the venv's
# Python: odoo-bin of the source tree, else the package's own entry point.
mango_odoo_command() {
    if [ -n "${MANGO_ODOO_BIN:-}" ]; then
        printf '%s\n' "$MANGO_PY" "$MANGO_ODOO_BIN"
    else
        printf '%s\n' "$MANGO_PY" -c 'import odoo.cli; odoo.cli.main()'
    fi
}

# Prints the option (if any) that makes Odoo load demo data into a new database:
# 18.0 loads it unless told not to, 19.0 only with --with-demo. The test suites
# and the demo expect it on both series.
mango_odoo_demo_args() {
    case "$MANGO_ODOO_SERIES" in
        1[0-8].*) ;;
        *) echo --with-demo ;;
    esac
}

# Odoo's own addons folders plus this repo, as --addons-path wants it.
mango_addons_path() {
    echo "$MANGO_ODOO_ADDONS_PATH"
}

# --- PostgreSQL -------------------------------------------------------------
# After mango_pg_ready: MANGO_PG_ARGS holds Odoo's --db_host/--db_port options and
# psql works through PGHOST/PGPORT/PGUSER.
MANGO_PG_ARGS=()

_mango_pg_usable() {
    command -v psql >/dev/null 2>&1 || return 1
    [ "$(psql -X -d postgres -Atc 'SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" = "t" ]
}

mango_pg_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

# Uses the server named by PGHOST/PGPORT or the default socket when the current
# user may create databases there; otherwise starts a private throw-away
# cluster, stopped and removed at exit.
mango_pg_ready() {
    if _mango_pg_usable; then
        mango_log "using the running PostgreSQL (${PGHOST:-default socket}${PGPORT:+:$PGPORT})"
        [ -n "${PGHOST:-}" ] && MANGO_PG_ARGS+=(--db_host "$PGHOST")
        [ -n "${PGPORT:-}" ] && MANGO_PG_ARGS+=(--db_port "$PGPORT")
        return 0
    fi
    mango_pg_start_private
}

mango_pg_start_private() {
    local bindir dir port me run_as=()
    bindir="$(mango_pg_bindir)" || { mango_apt_install postgresql && bindir="$(mango_pg_bindir)"; } \
        || mango_die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin"
    dir="$(mktemp -d /tmp/mango-pg.XXXXXX)"
    port="$(mango_free_port)"
    me="$(id -un)"
    if [ "$(id -u)" -eq 0 ]; then
        # PostgreSQL refuses to run as root: the cluster belongs to `postgres`.
        chown postgres: "$dir"
        run_as=(runuser -u postgres --)
    fi
    mango_log "starting a private PostgreSQL ($("$bindir/postgres" --version | awk '{print $3}')) in $dir, port $port"
    "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; mango_die "initdb failed"; }
    mkdir -p "$dir/socket" && chown --reference="$dir" "$dir/socket"
    mango_on_exit "_mango_pg_stop '$bindir' '$dir'"
    # Durability is pointless for a throw-away cluster; speed is not.
    "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir/socket -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
        start >/dev/null || { cat "$dir/server.log" >&2; mango_die "PostgreSQL did not start"; }
    export PGHOST="$dir/socket" PGPORT="$port"
    # Odoo refuses to connect as `postgres`: give the current user its own role.
    psql -X -q -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE \"$me\" LOGIN SUPERUSER" >&2
    export PGUSER="$me"
    MANGO_PG_ARGS+=(--db_host "$PGHOST" --db_port "$PGPORT" --db_user "$me")
    MANGO_PG_DIR="$dir"
}

_mango_pg_stop() {
    local bindir="$1" dir="$2" run_as=()
    [ "$(id -u)" -eq 0 ] && run_as=(runuser -u postgres --)
    "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

# Creates nothing: Odoo creates the database on -i. Drops it at exit.
mango_db_throwaway() {
    local name="$1"
    mango_on_exit "dropdb --if-exists '$name' >/dev/null 2>&1"
}
