// The chat page's script. Query parameters: `room` (default lobby), `name` (default a random
// guest-NNNN), `transports` (default polling,websocket). Everything from the server or the
// other users is put on the page as text (textContent, text nodes), never as HTML.

const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const name = params.get("name") || `guest-${1000 + Math.floor(Math.random() * 9000)}`;
const transports = (params.get("transports") || "polling,websocket")
  .split(",")
  .map((transport) => transport.trim())
  .filter(Boolean);

const $ = (id) => document.getElementById(id);
$("room").textContent = room;
$("name").textContent = name;
document.title = `#${room} · Ferrio chat`;

// The official client, from the same server. The room and name go in the connection's
// `auth`; the server checks them (a refusal arrives as `connect_error`).
const socket = io({ auth: { room, name }, transports });

function setStatus(status) {
  $("status").textContent = status;
  $("status").className = status;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

socket.on("connect", () => {
  setStatus("connected");
  showError("");
  refreshOnline();
});
socket.on("disconnect", () => setStatus("disconnected"));
socket.on("connect_error", (err) => {
  setStatus("disconnected");
  // A refusal carries the reason in `data`; a server that is down only a message.
  showError(typeof err.data === "string" ? err.data : err.message);
});

// `{name, text}`, from a page of this room or from the HTTP API.
socket.on("message", ({ name: from, text }) => {
  const li = document.createElement("li");
  if (from === name) li.className = "mine";
  const who = document.createElement("span");
  who.className = "name";
  who.textContent = String(from);
  li.append(who, ": ", String(text)); // strings given to append() become text nodes
  const list = $("messages");
  list.append(li);
  list.scrollTop = list.scrollHeight;
});

// Someone joined or left the room: ask for the count. Only the answer to the latest question
// is shown, so an answer that was overtaken never overwrites a newer count.
let asked = 0;
async function refreshOnline() {
  const question = ++asked;
  try {
    const count = await socket.timeout(5000).emitWithAck("online");
    if (question === asked && typeof count === "number") $("online").textContent = count;
  } catch {
    // Disconnected or no answer: the next `presence` or `connect` asks again.
  }
}
socket.on("presence", refreshOnline);

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  let error = "";
  try {
    const reply = await socket.timeout(5000).emitWithAck("message", text);
    if (reply && reply.error) error = `not sent: ${reply.error}`;
  } catch {
    error = "not sent: no answer from the server";
  }
  showError(error);
  if (error && !input.value) input.value = text; // give the text back to try again
});
