#!/usr/bin/env bash
# Installs what the tests need and this machine lacks: redis-server (with
# redis-cli and redis-benchmark) and PostgreSQL 15, from Debian's packages.
# As root it installs them with apt-get; otherwise it says what to run.
# Under CI=true a missing dependency is an error; elsewhere the tests that
# need it skip with the same message.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql-15)

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: go not found; install Go 1.26 from https://go.dev/dl/ and put it on PATH" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system services where an init system runs; the
  # tests start their own servers on free ports and need none of them.
  exit 0
fi

msg="install-deps: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
if [ "${CI:-}" = "true" ]; then
  echo "$msg" >&2
  exit 1
fi
echo "$msg (tests that need them will be skipped)" >&2
