#!/usr/bin/env bash
# Throw-away Samba Active Directory DC for tests and demos (Debian samba 4.17+), loopback only.
#
#   scripts/ldap/samba-ad.sh start     prints "export NAME=value" lines (also in $DIR/env.sh)
#   scripts/ldap/samba-ad.sh stop DIR  kills samba, removes DIR
#   scripts/ldap/samba-ad.sh pause DIR | resume DIR   stop / restart the DC keeping its data
#
# - Needs root: Samba's LDAP server only listens on the standard ports (389, 636, 3268, 3269) and has no
#   setting to move them. It binds them on ONE loopback address: 127.0.0.1 by default (AD_IP to choose);
#   when 127.0.0.1's ports are taken (another DC, a system slapd), the next free 127.0.0.x is used unless
#   AD_IP was given (that address is added to lo for the DC's lifetime and removed by stop). Nothing in /etc/samba is touched: smb.conf, sam.ldb, certs, pid and logs live in DIR.
# - Provisioning is slow (3 s to 40 s on a busy machine): the provisioned domain is kept as a template in
#   /tmp/mango-samba-template-<samba version>-<settings hash> and copied for each start (only smb.conf holds
#   the directory path, rewritten on copy). MANGO_SAMBA_NO_CACHE=1 provisions afresh.
# - Services trimmed to ldap + cldap; TLS with our own CA (openssl, ECDSA P-256 keys: fast to make), SAN dc1.<realm>, localhost, the IP.
#   Simple binds need TLS (Samba's default "ldap server require strong auth = yes", like hardened AD).
set -euo pipefail
# Debian keeps slapd, slapadd, samba and friends in sbin, which a non-login
# shell (cron, CI) may not have on its PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

REALM=${AD_REALM:-EXAMPLE.TEST}
DOMAIN=${AD_DOMAIN:-EXAMPLE}
ADMINPASS=${AD_ADMINPASS:-Adm1n-Passw0rd!}
realm_lower=$(echo "$REALM" | tr 'A-Z' 'a-z')
BASE_DN=$(echo "$realm_lower" | sed 's/^/DC=/; s/\./,DC=/g')
FQDN="dc1.$realm_lower"

port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

stop_daemon() {
  local dir=$1 pid
  [ -f "$dir/run/samba.fg.pid" ] || return 0
  pid=$(cat "$dir/run/samba.fg.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  # the single-process samba still has its ldap listener children in some builds: wait for the ports
  # shellcheck disable=SC1091
  . "$dir/env.sh" 2>/dev/null || true
  for _ in $(seq 1 50); do port_busy "${AD_IP:-127.0.0.1}" 636 || break; sleep 0.1; done
  rm -f "$dir/run/samba.fg.pid"
  if [ -f "$dir/run/added-ip" ]; then
    ip addr del "$(cat "$dir/run/added-ip")/32" dev lo 2>/dev/null || true
    rm -f "$dir/run/added-ip"
  fi
}

start_daemon() {
  local dir=$1
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  # Samba only binds addresses an interface carries; 127.0.0.1 is on lo, other 127.x need an alias.
  if ! ip -4 addr show dev lo | grep -q "inet $AD_IP/"; then
    ip addr add "$AD_IP/32" dev lo && echo "$AD_IP" > "$dir/run/added-ip"
  fi
  samba -i -M single -s "$dir/etc/smb.conf" >> "$dir/log/samba.out" 2>&1 < /dev/null 8>&- 9>&- &
  echo $! > "$dir/run/samba.fg.pid"
  for _ in $(seq 1 450); do
    kill -0 "$(cat "$dir/run/samba.fg.pid")" 2>/dev/null || { tail -20 "$dir/log/samba.out" >&2; return 1; }
    # over LDAPS with OUR CA: a different DC that grabbed the address would fail this check
    if LDAPTLS_CACERT="$AD_CA_FILE" LDAPTLS_REQCERT=demand \
       ldapsearch -x -H "ldaps://$AD_IP" -s base -b "" namingContexts >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "samba did not answer on $AD_IP" >&2
  return 1
}

cmd=${1:-start}
case "$cmd" in
  stop)
    dir=${2:-${SAMBA_TEST_DIR:-}}; [ -n "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop_daemon "$dir"; rm -rf "$dir"; exit 0 ;;
  pause) stop_daemon "${2:?DIR}"; exit 0 ;;
  resume)
    # idempotent: a second samba would fail on the ports and leave a wrong pid file behind
    if [ -f "${2:?DIR}/run/samba.fg.pid" ] && kill -0 "$(cat "$2/run/samba.fg.pid")" 2>/dev/null; then exit 0; fi
    start_daemon "$2"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start | stop DIR | pause DIR | resume DIR" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  echo "samba-ad.sh needs root (Samba binds ports 389/636/3268/3269)" >&2
  exit 1
fi
if ! command -v samba >/dev/null 2>&1 || ! command -v samba-tool >/dev/null 2>&1 || ! command -v ldapsearch >/dev/null 2>&1; then
  "$HERE/ensure-packages.sh" samba
fi

# ---- pick the loopback address ----
# Held until our DC listens, so two starts at the same moment cannot pick the same address.
exec 8>"/tmp/mango-samba-ports.lock"
flock 8
if [ -n "${AD_IP:-}" ]; then
  candidates=("$AD_IP")
else
  candidates=(127.0.0.1); for n in $(seq 2 30); do candidates+=("127.0.0.$n"); done
fi
IP=""
for ip in "${candidates[@]}"; do
  case "$ip" in 127.*) ;; *) echo "AD_IP must be a loopback address (127.x.x.x)" >&2; exit 2 ;; esac
  busy=0
  for p in 389 636 3268 3269; do port_busy "$ip" "$p" && { busy=1; break; }; done
  [ $busy = 0 ] && { IP=$ip; break; }
done
[ -n "$IP" ] || { echo "ports 389/636/3268/3269 are taken on ${candidates[*]}" >&2; exit 1; }

# ---- provisioned template (cached) ----
version=$(samba -V | awk '{print $2}')
# bump RECIPE when the provision command below changes: it keys the template cache
RECIPE=1
key=$(printf '%s|%s|%s|%s|%s' "$RECIPE" "$version" "$REALM" "$DOMAIN" "$ADMINPASS" | sha256sum | cut -c1-16)
TEMPLATE=/tmp/mango-samba-template-$version-$key
provision() {
  samba-tool domain provision --targetdir="$1" --realm="$REALM" --domain="$DOMAIN" \
    --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$ADMINPASS" \
    --host-name=dc1 --option="interfaces=127.0.0.1" --option="bind interfaces only=yes" \
    > "$1.provision.log" 2>&1 || { cat "$1.provision.log" >&2; return 1; }
  rm -f "$1.provision.log"
}
if [ "${MANGO_SAMBA_NO_CACHE:-0}" = 1 ] || [ ! -f "$TEMPLATE/.complete" ]; then
  exec 9>"/tmp/mango-samba-template.lock"
  flock 9
  if [ "${MANGO_SAMBA_NO_CACHE:-0}" = 1 ] || [ ! -f "$TEMPLATE/.complete" ]; then
    tmpl=$(mktemp -d -t mango-samba-provision.XXXXXX)
    provision "$tmpl"
    echo "$tmpl" > "$tmpl/.origin"
    touch "$tmpl/.complete"
    rm -rf "$TEMPLATE"; mv "$tmpl" "$TEMPLATE"
  fi
  flock -u 9
fi

D=$(mktemp -d -t mango-samba.XXXXXX)
trap 'status=$?; if [ $status -ne 0 ]; then stop_daemon "$D"; rm -rf "$D"; fi' EXIT
cp -a "$TEMPLATE/." "$D/"
origin=$(cat "$D/.origin")
rm -f "$D/.origin" "$D/.complete"
mkdir -p "$D"/{certs,run,log}

# ---- our CA + DC certificate, and an unrelated CA for wrong-CA tests ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -subj "/CN=Mango test AD CA" \
  -keyout "$D/certs/ca.key" -out "$D/certs/ca.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -subj "/CN=Some other CA" \
  -keyout "$D/certs/other-ca.key" -out "$D/certs/other-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$FQDN" \
  -keyout "$D/certs/dc.key" -out "$D/certs/dc.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:localhost,IP:%s\nextendedKeyUsage=serverAuth\n' "$FQDN" "$IP" > "$D/certs/ext.cnf"
openssl x509 -req -in "$D/certs/dc.csr" -CA "$D/certs/ca.pem" -CAkey "$D/certs/ca.key" \
  -CAcreateserial -days 3 -extfile "$D/certs/ext.cnf" -out "$D/certs/dc.pem" 2>/dev/null
chmod 600 "$D/certs/"*.key

# ---- smb.conf: paths into $D, LDAP only, this IP, our certificate ----
python3 - "$D" "$origin" "$IP" <<'PY'
import re, sys
d, origin, ip = sys.argv[1:4]
path = f"{d}/etc/smb.conf"
text = open(path).read().replace(origin, d)
text = re.sub(r"\tserver services = .*\n", "\tserver services = ldap, cldap\n", text)
text = re.sub(r"\tinterfaces = .*\n", f"\tinterfaces = {ip}\n", text)
text = re.sub(r"\tlog file = .*\n", f"\tlog file = {d}/log/log.%m\n", text)
extra = (
    f"\tpid directory = {d}/run\n"
    f"\tntp signd socket directory = {d}/run/ntp_signd\n"
    f"\twinbindd socket directory = {d}/run/winbindd\n"
    "\ttls enabled = yes\n"
    f"\ttls keyfile = {d}/certs/dc.key\n"
    f"\ttls certfile = {d}/certs/dc.pem\n"
    f"\ttls cafile = {d}/certs/ca.pem\n"
    "\tldap server require strong auth = yes\n"
)
text = text.replace("[global]\n", "[global]\n" + extra, 1)
open(path, "w").write(text)
PY

cat > "$D/env.sh" <<ENV
export SAMBA_TEST_DIR=$D
export AD_IP=$IP
export AD_HOSTNAME=$FQDN
export AD_URI=ldap://$IP:389
export AD_LDAPS_URI=ldaps://$IP:636
export AD_BASE_DN=$BASE_DN
export AD_BIND_DN=Administrator@$realm_lower
export AD_BIND_PW='$ADMINPASS'
export AD_CA_FILE=$D/certs/ca.pem
export AD_WRONG_CA_FILE=$D/certs/other-ca.pem
ENV
chmod 600 "$D/env.sh"
start_daemon "$D"
flock -u 8
trap - EXIT
cat "$D/env.sh"
