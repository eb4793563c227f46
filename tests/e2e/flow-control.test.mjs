// Flow control with the official client: a burst of broadcasts far larger than any socket's
// outbound budget, five clients that read and one that stopped reading.
//
// Binary under test: $INTEROP_BIN (any executable), default <repo>/target/debug/interop
// (Linux only: the server's memory is read from /proc.)

import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { io } from "socket.io-client";
import { startServer } from "./server.mjs";

const BIN =
  process.env.INTEROP_BIN || fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BURST = 4_000;
const PAYLOAD = "x".repeat(16 * 1024);
const READERS = 5;
const MB = 1024 * 1024;

function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  assert.ok(kb > 0, "VmRSS read from /proc");
  return kb * 1024;
}

function connect(port) {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

it(
  "a burst of 4 000 x 16 KB broadcasts reaches every reading client whole; the stalled one is dropped and its memory freed",
  { timeout: 120_000 },
  async (t) => {
    const env = { ...process.env };
    for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "RECOVERY"]) delete env[name];
    const server = startServer({
      bin: BIN,
      env,
      label: "interop",
      hint: "build it with `cargo build -p interop` or point INTEROP_BIN at it",
    });
    t.after(() => server.stop());
    const port = await server.ready;

    const readers = [];
    for (let i = 0; i < READERS; i++) readers.push(await connect(port));
    const stalled = await connect(port);
    t.after(() => [...readers, stalled].forEach((s) => s.close()));

    // The stalled client's TCP socket stops reading: its receive window closes.
    const tcp = stalled.io.engine.transport.ws._socket;
    assert.ok(tcp && typeof tcp.pause === "function", "the client's TCP socket is reachable");
    tcp.pause();
    let stalledGot = 0;
    stalled.on("bcast", () => stalledGot++);

    const counts = readers.map(() => 0);
    let wrong = 0;
    readers.forEach((s, i) =>
      s.on("bcast", (data) => {
        if (data === PAYLOAD) counts[i]++;
        else wrong++;
      }),
    );
    await sleep(500);
    const before = rssBytes(server.pid);

    readers[0].emit("burst", { n: BURST, payload: PAYLOAD });
    const deadline = Date.now() + 90_000;
    while (counts.some((c) => c < BURST) && Date.now() < deadline) await sleep(20);
    assert.deepEqual(counts, readers.map(() => BURST), "every reading client got all 4 000");
    assert.equal(wrong, 0, "every payload arrived intact");
    for (const s of readers) assert.ok(s.connected, "the reading clients stay connected");

    await sleep(1_500);
    const after = rssBytes(server.pid);
    const grown = (after - before) / MB;
    t.diagnostic(`server RSS before ${(before / MB).toFixed(1)} MB, 1.5 s after ${(after / MB).toFixed(1)} MB`);
    assert.ok(grown <= 32, `the server holds ${grown.toFixed(1)} MB more than before the burst`);

    // The stalled client was disconnected: once it reads again it sees the connection gone,
    // after at most what its kernel buffers held.
    const disconnected = new Promise((resolve) => stalled.once("disconnect", resolve));
    tcp.resume();
    const reason = await Promise.race([disconnected, sleep(10_000).then(() => "still connected")]);
    assert.equal(reason, "transport close");
    assert.ok(stalledGot < BURST, `the stalled client got ${stalledGot} before it was dropped`);
    assert.match(server.stderrTail(), /closing a slow client/, "the server logs why it dropped the client");

    // The server still serves the readers.
    const echoed = await readers[1].timeout(5_000).emitWithAck("echo", "still here");
    assert.equal(echoed, "still here");
  },
);
