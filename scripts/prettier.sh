#!/usr/bin/env bash
# Runs the prettier pinned in package-lock.json, installing it on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/prettier ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node_modules/.bin/prettier --write --ignore-unknown "$@"
