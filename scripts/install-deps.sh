#!/usr/bin/env bash
# Installs what the tests need and this machine lacks: redis-server (with
# redis-cli and redis-benchmark) and PostgreSQL 15, from Debian's packages,
# and SeaweedFS's `weed` (the S3-compatible server of the checkpoint tests),
# built from the Go module proxy into $(go env GOPATH)/bin, where
# internal/testserver finds it. As root it installs the packages with
# apt-get; otherwise it says what to run. Under CI=true a missing dependency
# is an error; elsewhere the tests that need it skip with the same message.
set -euo pipefail

# SeaweedFS, pinned. Its go.mod has replace directives, so `go install
# module@version` refuses it: download the module and build ./weed inside a
# writable copy of it (a few minutes on 2 cores, once per machine).
WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6

install_weed() {
  local bin dir tmp
  bin="$(go env GOPATH)/bin"
  if command -v weed >/dev/null 2>&1 || [ -x "$bin/weed" ]; then
    return 0
  fi
  echo "install-deps: building weed (SeaweedFS $WEED_VERSION) into $bin; this takes a few minutes"
  tmp=$(mktemp -d)
  # Outside any module, so that the download touches no go.mod.
  dir=$(cd "$tmp" && go mod download -json "$WEED_MODULE@$WEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "install-deps: go mod download $WEED_MODULE@$WEED_VERSION failed" >&2
    rm -rf "$tmp"
    return 1
  fi
  cp -r "$dir/." "$tmp/src"
  chmod -R u+w "$tmp/src"
  mkdir -p "$bin"
  (cd "$tmp/src" && go build -o "$bin/weed.tmp" ./weed)
  mv "$bin/weed.tmp" "$bin/weed"
  rm -rf "$tmp"
}

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql-15)

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: go not found; install Go 1.26 from https://go.dev/dl/ and put it on PATH" >&2
  exit 1
fi

install_weed

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
