#!/usr/bin/env bash
# The one place that installs packages. Idempotent: safe to run again.
#
#   deploy/setup.sh install   install the Debian packages Mugai needs
#   deploy/setup.sh build     install, then build into build/ (and build-asan/ with --asan)
#   deploy/setup.sh demo      install, build, start mugaid on its embedded defaults
#                             and sanitize every file in samples/files/
#   deploy/setup.sh test      install, build (plain, ASan+UBSan, and the fuzz
#                             targets with clang), run every test
#   deploy/setup.sh soak      install, build, then the long run: the load and
#                             chaos suites and every fuzz target, for
#                             SOAK_LOAD_SECONDS (1800), SOAK_CHAOS_SECONDS (900)
#                             and SOAK_FUZZ_SECONDS (600) each
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
  libuchardet-dev libxml2-dev libarchive-dev libgmime-3.0-dev libytnef0-dev
  libpoppler-glib-dev poppler-data libcairo2-dev libvips-dev fonts-noto-cjk
  # Office documents: LibreOffice headless (mugai-office-worker)
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui libreoffice-draw-nogui
  # BMP decoding (libvips 8.14 has no BMP loader but ImageMagick's)
  libgdk-pixbuf-2.0-dev
  # writing flattened PDFs: palette quantization, deflate, the PDF writer
  libimagequant-dev libdeflate-dev libqpdf-dev
  # sandbox, stores, hashes, milter, config
  libseccomp-dev libsqlite3-dev libpq-dev libssl-dev libmilter-dev
  libtomlplusplus-dev
  # release delivery: SMTP re-injection of an approved original (libcurl)
  libcurl4-openssl-dev
  # the Prometheus metrics endpoint (prometheus-cpp over civetweb)
  prometheus-cpp-dev
  # tests/deploy: parsing the Kubernetes manifests
  python3-yaml
  # tests
  libgtest-dev libgmock-dev grpc-proto
  # document tests and the PDF benchmark: checking and rendering PDFs, the
  # reference LibreOffice conversions, the Dangerzone-equivalent pipeline
  poppler-utils qpdf python3-fitz
  # mail tests: GMime from Python, to parse what mugaid delivers
  python3-gi gir1.2-gmime-3.0
  # archive tests: ZipCrypto and AES zips (bsdtar), overlapping-entry check (unzip)
  libarchive-tools unzip
  # end-to-end mail tests (tests/e2e): a real Postfix in front of mugai-milter,
  # run by the tests as a private instance on loopback only
  postfix
  # the PostgreSQL store tests (tests/support/postgres_cluster.py): the server,
  # run by the tests as a private cluster on a unix socket in a temp directory
  postgresql
  # test certificates for the TLS listeners (deploy/make-test-certs.sh)
  openssl
  # fuzzing (tests/fuzz): clang, and its libFuzzer and sanitizer runtimes,
  # which clang only recommends (and recommends are not installed)
  clang libclang-rt-14-dev
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui libreoffice-draw-nogui
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
  # Postfix (for tests/e2e) must install without configuring a system mail
  # service: "No configuration" writes no main.cf, so nothing listens; the
  # tests start their own private instance on 127.0.0.1.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() { # build DIR [extra cmake args...]
  local dir=$1; shift
  cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$ROOT/$dir" -j"$JOBS"
}

demo() {
  # Global: the EXIT trap runs after this function has returned.
  DEMO_PID=""
  local out=/tmp/mugai-demo
  local log="$out/mugaid.log"
  mkdir -p "$out"
  # The daemon on its embedded defaults: data in /var/lib/mugai, unix
  # sockets under /run/mugai, signatures from the system or samples/.
  "$ROOT/build/bin/mugaid" >"$log" 2>&1 &
  DEMO_PID=$!
  trap 'kill -TERM $DEMO_PID 2>/dev/null; wait $DEMO_PID 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    grep -q ' ready$' "$log" 2>/dev/null && break
    kill -0 $DEMO_PID 2>/dev/null || { cat "$log"; echo "setup: mugaid did not start" >&2; exit 1; }
    sleep 0.1
  done
  cat "$log"
  echo
  "$ROOT/build/bin/mugai" status
  echo
  for f in "$ROOT"/samples/files/*; do
    "$ROOT/build/bin/mugai" sanitize-file "$f" -o "$out/files" || true
  done
  echo
  mkdir -p "$out/mail"
  for f in "$ROOT"/samples/mail/*.eml; do
    "$ROOT/build/bin/mugai" sanitize-mail "$f" -o "$out/mail/$(basename "$f")" || true
  done
  echo
  echo "quarantine:"
  "$ROOT/build/bin/mugai" quarantine list
  echo
  echo "vault (originals kept, encrypted; the admin token is /var/lib/mugai/admin.token):"
  "$ROOT/build/bin/mugai" vault search --state vault --limit 10
  "$ROOT/build/bin/mugai" audit verify
  echo
  echo "derivatives are in $out/files, sanitized messages in $out/mail; the daemon's log is $log"
}

run_tests() {
  build build
  build build-asan -DMUGAI_SANITIZE=ON
  local rc=0
  (cd "$ROOT/build" && ctest --output-on-failure -j"$JOBS") || rc=1
  # The sanitized build runs our code's tests; the e2e suites time Postfix
  # against mugaid, the load suites measure throughput and the manifest
  # check reads files, so they run once.
  (cd "$ROOT/build-asan" && ctest --output-on-failure -j"$JOBS" -L 'unit|integration' -LE 'e2e|deploy|load') || rc=1
  # Every fuzz target for MUGAI_FUZZ_SECONDS (30 by default), then its
  # regression inputs.
  build_fuzz
  (cd "$ROOT/build-fuzz" && ctest --output-on-failure -j"$JOBS" -L fuzz) || rc=1
  return $rc
}

# The fuzz targets with clang; only they and what they link are built.
build_fuzz() {
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$ROOT/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUGAI_FUZZ=ON >/dev/null
  cmake --build "$ROOT/build-fuzz" -j"$JOBS" --target fuzz_targets
}

# The long form of what CI runs briefly; prints each suite's figures.
soak() {
  build build
  build_fuzz
  local rc=0
  (cd "$ROOT/build" && MUGAI_LOAD_SECONDS=${SOAK_LOAD_SECONDS:-1800} MUGAI_CHAOS_SECONDS=${SOAK_CHAOS_SECONDS:-900} \
    ctest -V -R '^integration[.]load[.]') || rc=1
  (cd "$ROOT/build-fuzz" && MUGAI_FUZZ_SECONDS=${SOAK_FUZZ_SECONDS:-600} ctest -V -j"$JOBS" -L fuzz) || rc=1
  return $rc
}

case "${1:-}" in
  install) install_packages ;;
  build) install_packages; build build ;;
  demo) install_packages; build build; demo ;;
  test) install_packages; run_tests ;;
  soak) install_packages; soak ;;
  *) echo "usage: $0 install|build|demo|test|soak" >&2; exit 1 ;;
esac
