// What several end-to-end tests share (not a test file itself): unique names, waiting for a
// condition or an event, and JSON requests to a node (`{ name, url }`).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

/** Upper bound for any single wait. */
export const WAIT_MS = 5_000;

/** A unique suffix for room and event names. */
export const tag = () => randomBytes(4).toString("hex");

/** Resolves once `predicate()` returns true (checked every 5 ms); rejects after `ms`. */
export async function waitUntil(predicate, what, ms = WAIT_MS, describeState = () => "") {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) {
      const state = describeState();
      throw new Error(`timed out after ${ms} ms waiting for ${what}${state ? `: ${state}` : ""}`);
    }
    await sleep(5);
  }
}

/** A JSON HTTP request to a node; resolves with `{ status, body }`. */
export async function http(node, method, path, body) {
  const res = await fetch(`${node.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** Like `http`, and asserts a 200. */
export async function ok(node, method, path, body) {
  const res = await http(node, method, path, body);
  assert.equal(res.status, 200, `${method} ${path} on ${node.name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** The arguments of the next `event` on a socket.io-client socket; rejects after `WAIT_MS`. */
export function once(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Resolves once `check()` holds (a throw counts as not yet); rejects after `WAIT_MS`. */
export function until(what, check) {
  return waitUntil(async () => {
    try {
      return await check();
    } catch {
      return false;
    }
  }, what);
}
