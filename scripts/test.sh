#!/usr/bin/env bash
# The whole suite. On CI a missing PostgreSQL is installed here, never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ] || [ "${PILOTBOT_INSTALL_PG:-}" = "1" ]; then
    echo "installing PostgreSQL (Debian package) for the storage tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  else
    echo "note: no PostgreSQL server found; PostgreSQL tests will skip (set PILOTBOT_INSTALL_PG=1 to install it)"
  fi
fi

$BIN/ruff check .
$BIN/mypy bot storage
set +e
$BIN/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit $rc
