// Connection state recovery with the official client (docs/examples.md, section 2,
// RECOVERY=1): a client whose transport is cut while 50 events are emitted (to it, to its
// room, to everyone, by HTTP handlers and by another client) comes back with its old id and
// rooms, `recovered === true`, and every event once, in order; acks work both ways after.
// Leaving on purpose, or presenting an unknown pid, gives a fresh session.
//
// Run from the repository root: node --test tests/e2e/recovery.test.mjs
// Binary under test: $INTEROP_BIN, default target/debug/interop.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startServer } from "./server.mjs";
import { once, until } from "./cluster.mjs";

const DEFAULT_BIN = fileURLToPath(new URL("../../target/debug/interop", import.meta.url));
const BIN = process.env.INTEROP_BIN || DEFAULT_BIN;
const WAIT_MS = 5_000;

for (const transport of ["websocket", "polling"]) {
  describe(`connection state recovery over ${transport}`, { timeout: 30_000 }, () => {
    let server;
    let base;

    before(async () => {
      // Sessions last 5 s here (instead of 120 s), so the test of expiry is quick; every
      // other case reconnects well within it.
      const env = { ...process.env, RECOVERY: "1", RECOVERY_MAX_DISCONNECTION_MS: "5000" };
      for (const name of ["PARSER", "SIO_PATH", "REDIS_URL", "REDIS_STREAMS"]) delete env[name];
      server = startServer({
        bin: BIN,
        env,
        label: "interop (RECOVERY=1)",
        hint: "build it with `cargo build -p interop` or point INTEROP_BIN at it",
      });
      base = `http://127.0.0.1:${await server.ready}`;
    });

    after(async () => {
      await server?.stop();
    });

    const connect = async (options = {}) => {
      const socket = io(base, { transports: [transport], reconnection: false, forceNew: true, ...options });
      if (options.autoConnect !== false) await once(socket, "connect");
      return socket;
    };

    const post = async (path, body) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, await res.text());
    };

    const ids = async (room) => {
      const res = await fetch(`${base}/sockets${room ? `?room=${encodeURIComponent(room)}` : ""}`);
      return (await res.json()).ids;
    };

    it("a cut client gets all 50 missed events once, in order, with its id and rooms", async () => {
      const a = await connect();
      const b = await connect();
      try {
        const seen = [];
        a.on("seq", (n) => seen.push(n));
        assert.equal(await a.emitWithAck("join", "r"), true);
        // One event before the cut, so the client has an offset.
        await post("/emit", { room: a.id, event: "seq", data: -1 });
        await until("the first event", () => seen.length === 1);
        const oldId = a.id;
        assert.equal(a.recovered, false);

        a.io.engine.close();
        await until("the server lost the socket", async () => !(await ids()).includes(oldId));

        for (let n = 0; n < 50; n++) {
          switch (n % 5) {
            case 0: // to it, from an HTTP handler
              await post("/emit", { room: oldId, event: "seq", data: n });
              break;
            case 1: // to its room, from an HTTP handler
              await post("/emit", { room: "r", event: "seq", data: n });
              break;
            case 2: // to everyone, from an HTTP handler
              await post("/emit", { event: "seq", data: n });
              break;
            case 3: // by another client, to everyone but itself
              b.emit("broadcast", "seq", n);
              await b.emitWithAck("echo", "barrier");
              break;
            case 4: // by another client, to the room
              b.emit("to-room", "r", "seq", n);
              await b.emitWithAck("echo", "barrier");
              break;
          }
        }

        a.connect();
        await once(a, "connect");
        assert.equal(a.recovered, true, "recovered");
        assert.equal(a.id, oldId, "the old id");
        await until("all missed events", () => seen.length >= 51);
        await new Promise((r) => setTimeout(r, 200)); // nothing more arrives
        assert.deepEqual(seen, [-1, ...Array.from({ length: 50 }, (_, n) => n)]);
        assert.deepEqual(await a.emitWithAck("rooms"), ["r"]);

        // Acks both ways afterwards.
        assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("echo", { x: 1 }), { x: 1 });
        a.once("question", (payload, answer) => answer({ answered: payload }));
        assert.deepEqual(await a.timeout(WAIT_MS).emitWithAck("ask", 7), { answered: 7 });
        // And live events still come in.
        await post("/emit", { room: "r", event: "seq", data: 99 });
        await until("a live event", () => seen.at(-1) === 99);
      } finally {
        a.close();
        b.close();
      }
    });

    it("a client that leaves on purpose gets a fresh session", async () => {
      const a = await connect();
      try {
        const oldId = a.id;
        a.disconnect();
        a.connect();
        await once(a, "connect");
        assert.equal(a.recovered, false);
        assert.notEqual(a.id, oldId);
      } finally {
        a.close();
      }
    });

    it("after maxDisconnectionDuration, a fresh session", { skip: transport !== "websocket" && "once is enough" }, async () => {
      const a = await connect();
      try {
        const oldId = a.id;
        const seen = once(a, "seq");
        await post("/emit", { room: oldId, event: "seq", data: 1 });
        await seen;
        a.io.engine.close();
        await until("the server lost the socket", async () => !(await ids()).includes(oldId));
        await new Promise((r) => setTimeout(r, 6_500)); // past 5 s, and a sweep
        a.connect();
        await once(a, "connect");
        assert.equal(a.recovered, false);
        assert.notEqual(a.id, oldId);
      } finally {
        a.close();
      }
    });

    it("an unknown pid gets a fresh session", async () => {
      const a = await connect({ autoConnect: false });
      try {
        // The client keeps its pid and offset in private fields; a forged one is unknown.
        a._pid = "0123456789abcdefghij";
        a._lastOffset = "1";
        a.connect();
        await once(a, "connect");
        assert.equal(a.recovered, false);
        assert.deepEqual(await a.emitWithAck("echo", "fresh"), "fresh");
      } finally {
        a.close();
      }
    });
  });
}
