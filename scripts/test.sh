#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script):
#   formatting, clippy, every Rust test, the fuzz harness for a bounded number of cases,
#   the end-to-end tests that drive the example servers with the official npm clients, with
#   the Python client python-socketio and with headless Chromium (the chat example's page and
#   the Admin UI), and a smoke run of the benchmark harness.
# It installs and starts what the tests need: the npm packages of tests/e2e (the Admin UI and
# playwright-core among them), of the chat example (its browser client) and of the Node.js
# benchmark peer, Debian's Chromium for the browser tests when /usr/bin/chromium is missing,
# a Python virtualenv
# in tests/e2e/.venv (tests/e2e/requirements.txt), and Redis when nothing answers on
# 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "npm packages for the end-to-end tests"
if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

step "the chat example's browser client (examples/chat)"
if [ ! -d examples/chat/node_modules ] || [ examples/chat/package-lock.json -nt examples/chat/node_modules ]; then
  (cd examples/chat && npm ci --no-audit --no-fund --loglevel=error)
fi

step "Chromium for the browser tests"
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

step "Redis on 127.0.0.1:6379"
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    redis-server --daemonize yes --port 6379 --save ""
  else
    echo "redis-server is not installed; tests that need Redis will fail" >&2
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "fuzz harness (bounded: ${FUZZ_CASES:=20000} cases per property)"
PROPTEST_CASES="$FUZZ_CASES" cargo test --locked -p ferrio-protocol --features msgpack --test fuzz
PROPTEST_CASES=$((FUZZ_CASES / 20)) cargo test --locked -p ferrio-engine --test hostile
PROPTEST_CASES=$((FUZZ_CASES / 100)) cargo test --locked -p ferrio --features msgpack --test hostile

step "end-to-end tests with the official clients"
# tests/e2e/redis-cluster.test.mjs starts a redis-server of its own on a free port (a cluster
# of two interop processes and a Node.js socket.io server), so it shares no channel with the
# Redis above.
cargo build --locked -p conformance -p interop -p chat
node --test tests/e2e/*.test.mjs

step "benchmark harness smoke run (tiny sizes, all four servers; the real comparison is docs/benchmarks.md)"
cargo run --locked -q -p ferrio-bench -- compare --smoke --runs 1 --profile debug --out target/bench-smoke

step "end-to-end tests with the Python client (python-socketio)"
# (re)created when missing, when requirements.txt is newer, or when an earlier install failed
venv_stamp=tests/e2e/.venv/.requirements-installed
if [ ! -x tests/e2e/.venv/bin/python ] || [ ! -e "$venv_stamp" ] \
  || [ tests/e2e/requirements.txt -nt "$venv_stamp" ]; then
  rm -rf tests/e2e/.venv
  python3 -m venv tests/e2e/.venv
  tests/e2e/.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  touch "$venv_stamp"
fi
INTEROP_BIN="${INTEROP_BIN:-target/debug/interop}" \
  tests/e2e/.venv/bin/python -m unittest discover -s tests/e2e -p 'test_*.py' -v
