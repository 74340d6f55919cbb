#!/usr/bin/env bash
# The one place that installs packages. Idempotent: safe to run again.
#
#   deploy/setup.sh install   install the Debian packages Mugai needs
#   deploy/setup.sh build     install, then build into build/ (and build-asan/ with --asan)
#   deploy/setup.sh demo      install, build, start mugaid on its embedded defaults
#                             and sanitize every file in samples/files/
#   deploy/setup.sh test      install, build (plain and ASan+UBSan), run every test
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=$(nproc)

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config python3
  # gRPC and protobuf
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # detection, scanning, test signatures
  libmagic-dev libmagic-mgc shared-mime-info libglib2.0-dev
  libclamav-dev clamav-testfiles
  # converters
  libuchardet-dev libxml2-dev libarchive-dev libgmime-3.0-dev
  libpoppler-glib-dev libcairo2-dev libvips-dev fonts-noto-cjk
  # sandbox, stores, hashes, milter, config
  libseccomp-dev libsqlite3-dev libpq-dev libssl-dev libmilter-dev
  libtomlplusplus-dev
  # tests
  libgtest-dev libgmock-dev
)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages present"
    return
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() { # build DIR [extra cmake args...]
  local dir=$1; shift
  cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$ROOT/$dir" -j"$JOBS"
}

demo() {
  local data run
  data=$(mktemp -d /tmp/mugai-demo.XXXXXX)
  run="$data/run"
  mkdir -p "$run"
  # Embedded defaults except where the demo must not touch the host's paths.
  "$ROOT/build/bin/mugaid" --data-dir "$data" \
      --ingress "unix:$run/ingress.sock" --admin "unix:$run/admin.sock" \
      --egress "unix:$run/egress.sock" &
  local pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -S "$run/admin.sock" ] && break; sleep 0.1; done
  export MUGAI_SERVER="unix:$run/ingress.sock"
  "$ROOT/build/bin/mugai" --server "unix:$run/admin.sock" status
  mkdir -p "$data/out"
  for f in "$ROOT"/samples/files/*; do
    "$ROOT/build/bin/mugai" sanitize-file "$f" -o "$data/out" || true
  done
  echo
  echo "derivatives are in $data/out; quarantine:"
  "$ROOT/build/bin/mugai" --server "unix:$run/admin.sock" quarantine list
}

run_tests() {
  build build
  build build-asan -DMUGAI_SANITIZE=ON
  local rc=0
  (cd "$ROOT/build" && ctest --output-on-failure -j"$JOBS") || rc=1
  (cd "$ROOT/build-asan" && ctest --output-on-failure -j"$JOBS" -L 'unit|integration') || rc=1
  return $rc
}

case "${1:-}" in
  install) install_packages ;;
  build) install_packages; build build ;;
  demo) install_packages; build build; demo ;;
  test) install_packages; run_tests ;;
  *) echo "usage: $0 install|build|demo|test" >&2; exit 1 ;;
esac
