#!/usr/bin/env bash
# The README's main command: the browser chat (examples/chat, docs/examples.md section 3) on
# http://127.0.0.1:${PORT:-3000}/?room=lobby. From a fresh clone it first installs the
# Socket.IO browser client the page uses (the npm package socket.io-client, with `npm ci` in
# examples/chat), then builds and runs the server. PORT and REDIS_URL pass through.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f examples/chat/node_modules/socket.io-client/dist/socket.io.min.js ]; then
  if ! command -v npm >/dev/null; then
    echo "demo.sh: npm (Node.js 20 with npm) is needed once, to install the browser client" >&2
    exit 1
  fi
  (cd examples/chat && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

echo "demo.sh: once it prints \`listening on PORT\`, open http://127.0.0.1:PORT/?room=lobby in two browsers" >&2
exec cargo run --release --locked -p chat
