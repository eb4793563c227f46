// The interop server's heartbeat settings from the environment (docs/examples.md, section 2):
// PING_INTERVAL_MS and PING_TIMEOUT_MS show in the Engine.IO handshake; a bad value exits
// with status 2 before the server listens.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { startServer } from "./server.mjs";

const BIN = process.env.INTEROP_BIN ?? "target/debug/interop";
const HINT = "build it with `cargo build -p interop` or point INTEROP_BIN at it";

function cleanEnv(extra) {
  const env = { ...process.env };
  for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY", "PING_INTERVAL_MS", "PING_TIMEOUT_MS", "WS_READ_BUFFER_BYTES"]) {
    delete env[name];
  }
  return Object.assign(env, extra);
}

test("PING_INTERVAL_MS and PING_TIMEOUT_MS set the heartbeat of the handshake", { timeout: 20_000 }, async () => {
  const server = startServer({
    bin: BIN,
    env: cleanEnv({ PING_INTERVAL_MS: "1234", PING_TIMEOUT_MS: "567" }),
    label: "interop (custom heartbeat)",
    hint: HINT,
  });
  try {
    const port = await server.ready;
    const res = await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.equal(body[0], "0", `an open packet: ${body}`);
    const handshake = JSON.parse(body.slice(1));
    assert.equal(handshake.pingInterval, 1234);
    assert.equal(handshake.pingTimeout, 567);
  } finally {
    await server.stop();
  }
});

test("a heartbeat setting that is not a positive number exits with status 2", () => {
  for (const [name, value] of [["PING_INTERVAL_MS", "abc"], ["PING_TIMEOUT_MS", "0"], ["PING_INTERVAL_MS", "-5"]]) {
    const run = spawnSync(BIN, [], { env: cleanEnv({ PORT: "0", [name]: value }), timeout: 10_000, encoding: "utf8" });
    assert.equal(run.status, 2, `${name}=${value}: ${run.stderr}`);
    assert.match(run.stderr, new RegExp(name));
    assert.equal(run.stdout, "", "nothing printed on stdout");
  }
});

test("WS_READ_BUFFER_BYTES (benchmarks only) starts the server, a bad value exits with status 2", { timeout: 20_000 }, async () => {
  const server = startServer({
    bin: BIN,
    env: cleanEnv({ WS_READ_BUFFER_BYTES: "65536" }),
    label: "interop (64 KiB WebSocket read buffer)",
    hint: HINT,
  });
  try {
    const port = await server.ready;
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(res.status, 200);
  } finally {
    await server.stop();
  }
  for (const value of ["abc", "0", "-1"]) {
    const run = spawnSync(BIN, [], { env: cleanEnv({ PORT: "0", WS_READ_BUFFER_BYTES: value }), timeout: 10_000, encoding: "utf8" });
    assert.equal(run.status, 2, `WS_READ_BUFFER_BYTES=${value}: ${run.stderr}`);
    assert.match(run.stderr, /WS_READ_BUFFER_BYTES/);
    assert.equal(run.stdout, "", "nothing printed on stdout");
  }
});

test("REDIS_URL that is not a Redis URL exits with status 2", () => {
  const run = spawnSync(BIN, [], { env: cleanEnv({ PORT: "0", REDIS_URL: "not a url" }), timeout: 10_000, encoding: "utf8" });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /REDIS_URL/);
});
