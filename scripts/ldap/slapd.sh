#!/usr/bin/env bash
# Throw-away OpenLDAP for tests and demos: private temp dir, loopback high ports, our own CA.
#
#   scripts/ldap/slapd.sh start [--users N] [--empty] [--bulk]
#                                                       prints "export NAME=value" lines (also in $DIR/env.sh)
#   scripts/ldap/slapd.sh stop DIR                      kills slapd, removes DIR
#   scripts/ldap/slapd.sh pause DIR | resume DIR        stop / restart the daemon, keeping the data (outage tests)
#
# What it sets up:
#   - ldap:// (plain + StartTLS) and ldaps:// on 127.0.0.1, plus ldaps:// on 127.0.0.2 whose address is NOT
#     in the certificate (host-name mismatch tests), ldapi:// socket in DIR
#   - CA + server certificate made by openssl (SAN localhost, 127.0.0.1); a second, unrelated CA (wrong-CA tests)
#   - memberof + refint overlays, entryUUID/modifyTimestamp indexes
#   - service account cn=odoo-sync,ou=services with size limit 100 (below the sample directory size):
#     an unpaged search gets sizeLimitExceeded, a paged one gets everything (like AD's MaxPageSize)
#   - sample directory from scripts/ldap/sample_directory.py, loaded online so the overlays run
#   --bulk (benchmarks of 100,000 people): the sample is loaded offline by slapadd, its memberOf
#     back-links written by the generator instead of the overlay, and slapd listens on 127.0.0.1 only
# Runs as any user; installs the Debian packages first when missing and root.
set -euo pipefail
# Debian keeps slapd, slapadd, samba and friends in sbin, which a non-login
# shell (cron, CI) may not have on its PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SLAPD=${SLAPD:-/usr/sbin/slapd}
SCHEMA_DIR=${SCHEMA_DIR:-/etc/ldap/schema}
MODULE_DIR=${MODULE_DIR:-/usr/lib/ldap}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }

stop_daemon() {
  local dir=$1 pid
  [ -f "$dir/slapd.pid" ] || return 0
  pid=$(cat "$dir/slapd.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/slapd.pid"
}

start_daemon() {
  local dir=$1
  # shellcheck disable=SC1091
  . "$dir/env.sh"
  "$SLAPD" -F "$dir/slapd.d" -h "$(cat "$dir/urls")"
  for _ in $(seq 1 100); do
    ldapwhoami -x -H "$LDAP_URI" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "slapd did not answer on $LDAP_URI" >&2
  return 1
}

cmd=${1:-start}
case "$cmd" in
  stop)
    dir=${2:-${SLAPD_TEST_DIR:-}}; [ -n "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    stop_daemon "$dir"; rm -rf "$dir"; exit 0 ;;
  pause) stop_daemon "${2:?DIR}"; exit 0 ;;
  resume)
    # idempotent: a second slapd would only fail on the busy ports
    if [ -f "${2:?DIR}/slapd.pid" ] && kill -0 "$(cat "$2/slapd.pid")" 2>/dev/null; then exit 0; fi
    start_daemon "$2"; exit 0 ;;
  start) shift || true ;;
  *) echo "usage: $0 start [--users N] [--empty] | stop DIR | pause DIR | resume DIR" >&2; exit 2 ;;
esac

USERS=250
LOAD_SAMPLE=1
BULK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS=$2; shift 2 ;;
    --empty) LOAD_SAMPLE=0; shift ;;
    --bulk) BULK=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

if ! command -v "$SLAPD" >/dev/null 2>&1 || ! command -v ldapadd >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  "$HERE/ensure-packages.sh" slapd
fi

SUFFIX=${SLAPD_SUFFIX:-dc=example,dc=test}
ROOTDN="cn=admin,$SUFFIX"
ROOTPW=${SLAPD_ROOTPW:-admin-$(openssl rand -hex 6)}
SVC_DN="cn=odoo-sync,ou=services,$SUFFIX"
SVC_PW=${SLAPD_SVCPW:-sync-$(openssl rand -hex 6)}
SIZE_LIMIT=${SLAPD_SIZE_LIMIT:-100}

BASE=$(mktemp -d -t mango-slapd.XXXXXX)
trap 'status=$?; if [ $status -ne 0 ]; then stop_daemon "$BASE"; rm -rf "$BASE"; fi' EXIT
mkdir -p "$BASE"/{slapd.d,db,certs}
cd "$BASE"

# ---- certificates: our CA, a server cert for localhost/127.0.0.1, and an unrelated CA ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -subj "/CN=Mango test LDAP CA" \
  -keyout certs/ca.key -out certs/ca.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 -subj "/CN=Some other CA" \
  -keyout certs/other-ca.key -out certs/other-ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout certs/server.key -out certs/server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > certs/ext.cnf
openssl x509 -req -in certs/server.csr -CA certs/ca.pem -CAkey certs/ca.key -CAcreateserial \
  -days 3 -extfile certs/ext.cnf -out certs/server.pem 2>/dev/null
chmod 600 certs/*.key

PORT=$(free_port); SPORT=$(free_port)
LDAPI_URI="ldapi://$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$BASE/ldapi")"
if [ "$BULK" = 1 ]; then
  echo "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$SPORT/ $LDAPI_URI" > urls
else
  echo "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$SPORT/ ldaps://127.0.0.2:$SPORT/ $LDAPI_URI" > urls
fi
DC=$(echo "$SUFFIX" | sed 's/^dc=\([^,]*\).*/\1/')

cat > config.ldif <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $BASE/slapd.pid
olcArgsFile: $BASE/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: $BASE/certs/ca.pem
olcTLSCertificateFile: $BASE/certs/server.pem
olcTLSCertificateKeyFile: $BASE/certs/server.key
olcTLSVerifyClient: never

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODULE_DIR
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMA_DIR/core.ldif
include: file://$SCHEMA_DIR/cosine.ldif
include: file://$SCHEMA_DIR/inetorgperson.ldif
include: file://$SCHEMA_DIR/nis.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 500

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by dn.exact=gidNumber=$(id -g)+uidNumber=$(id -u),cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcRootDN: $ROOTDN
olcRootPW: $(slappasswd -s "$ROOTPW")
olcDbDirectory: $BASE/db
olcDbMaxSize: $([ "$BULK" = 1 ] && echo 4294967296 || echo 268435456)
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail,sn,givenName eq,sub
olcDbIndex: entryUUID,entryCSN eq
olcDbIndex: member,uniqueMember,memberOf eq
olcDbIndex: modifyTimestamp,createTimestamp eq
olcLimits: {0}* size.soft=$SIZE_LIMIT size.hard=$SIZE_LIMIT size.pr=1000 size.prtotal=unlimited
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by dn.exact="$SVC_DN" read by self read by users read by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOfConfig
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}refint,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {1}refint
olcRefintAttribute: member
olcRefintAttribute: memberOf
LDIF
slapadd -n0 -F slapd.d -l config.ldif >/dev/null
"$SLAPD" -Ttest -F slapd.d -u >/dev/null 2>&1

cat > env.sh <<ENV
export SLAPD_TEST_DIR=$BASE
export LDAP_URI=ldap://127.0.0.1:$PORT
export LDAPS_URI=ldaps://127.0.0.1:$SPORT
export LDAPS_ALT_URI=ldaps://127.0.0.2:$SPORT
export LDAPI_URI=$LDAPI_URI
export LDAP_BASE_DN=$SUFFIX
export LDAP_ROOT_DN=$ROOTDN
export LDAP_ROOT_PW=$ROOTPW
export LDAP_BIND_DN=$SVC_DN
export LDAP_BIND_PW=$SVC_PW
export LDAP_SIZE_LIMIT=$SIZE_LIMIT
export LDAP_SAMPLE_USERS=$([ "$LOAD_SAMPLE" = 1 ] && echo "$USERS" || echo 0)
export LDAP_CA_FILE=$BASE/certs/ca.pem
export LDAP_WRONG_CA_FILE=$BASE/certs/other-ca.pem
ENV
chmod 600 env.sh

base_tree() {
  cat <<LDIF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
o: Example
dc: $DC

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: $SVC_DN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: odoo-sync
userPassword: $(slappasswd -s "$SVC_PW")

LDIF
}

if [ "$BULK" = 1 ]; then
  # ---- offline: one slapadd of everything (memberOf written by the generator) ----
  {
    base_tree
    [ "$LOAD_SAMPLE" = 1 ] && python3 "$HERE/sample_directory.py" --base "$SUFFIX" --users "$USERS" --member-of
  } > data.ldif
  slapadd -q -n1 -F slapd.d -l data.ldif >/dev/null
  rm -f data.ldif
  start_daemon "$BASE"
else
  start_daemon "$BASE"
  # ---- base tree + service account + sample people, online (overlays only run online) ----
  {
    base_tree
    [ "$LOAD_SAMPLE" = 1 ] && python3 "$HERE/sample_directory.py" --base "$SUFFIX" --users "$USERS"
  } | ldapadd -x -H "ldap://127.0.0.1:$PORT" -D "$ROOTDN" -w "$ROOTPW" >/dev/null
fi

trap - EXIT
cat env.sh
