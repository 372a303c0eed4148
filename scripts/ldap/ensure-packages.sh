#!/usr/bin/env bash
# Install the Debian packages the throw-away directory servers need, only when missing.
#   scripts/ldap/ensure-packages.sh            # slapd + Samba AD DC + tools
#   scripts/ldap/ensure-packages.sh slapd      # only what slapd.sh needs
#   scripts/ldap/ensure-packages.sh samba      # only what samba-ad.sh needs
# Needs root (apt-get) when something is missing; prints nothing when all is there.
set -euo pipefail
# Debian keeps slapd, slapadd, samba and friends in sbin, which a non-login
# shell (cron, CI) may not have on its PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

case "${1:-all}" in
  slapd) wanted=(slapd ldap-utils openssl) ;;
  samba) wanted=(samba samba-ad-dc samba-ad-provision ldap-utils openssl) ;;
  all) wanted=(slapd ldap-utils openssl samba samba-ad-dc samba-ad-provision) ;;
  *) echo "usage: $0 [all|slapd|samba]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run $0 as root)" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# slapd's postinst would configure and start a system directory: we only want the binaries,
# our scripts run their own instances in temp dirs. policy-rc.d 101 = "do not start services".
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
