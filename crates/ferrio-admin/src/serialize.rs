//! Sockets and dates as the UI reads them.

use std::time::{SystemTime, UNIX_EPOCH};

use ferrio::adapter::HandshakeData;
use ferrio::{Io, Payload, RemoteSocket, SocketRef, Transport};
use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::{Value, json};

/// An event's name and arguments as one list (`[event, ...args]`), binary kept.
pub(crate) struct EventArgs<'a> {
    pub(crate) event: &'a str,
    pub(crate) args: Option<&'a Payload>,
}

impl Serialize for EventArgs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = self.args.map_or(0, Payload::len);
        let mut seq = serializer.serialize_seq(Some(len + 1))?;
        seq.serialize_element(self.event)?;
        if let Some(args) = self.args {
            for i in 0..len {
                if let Some(arg) = args.arg(i) {
                    seq.serialize_element(&arg)?;
                }
            }
        }
        seq.end()
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Polling => "polling",
        Transport::WebSocket => "websocket",
    }
}

/// The handshake without its auth (which may hold secrets).
fn handshake_json(handshake: &HandshakeData) -> Value {
    let forwarded = ["cf-connecting-ip", "x-forwarded-for"]
        .iter()
        .find_map(|h| handshake.headers.get(*h).and_then(Value::as_str));
    json!({
        "address": forwarded.unwrap_or(&handshake.address),
        "headers": handshake.headers,
        "query": handshake.query,
        "issued": handshake.issued,
        "secure": handshake.secure,
        "time": handshake.time,
        "url": handshake.url,
        "xdomain": handshake.xdomain,
    })
}

/// A socket of this server.
pub(crate) fn socket_json(socket: &SocketRef) -> Value {
    let handshake = HandshakeData::new(socket.handshake(), Value::Null);
    let rooms: Vec<String> = socket.rooms().into_iter().map(|r| r.into_owned()).collect();
    let connection = socket.connection_id();
    json!({
        "id": socket.id().as_str(),
        // Only a prefix: the whole connection id is a credential of the client.
        "clientId": &connection.as_str()[..12.min(connection.as_str().len())],
        "transport": transport_name(socket.transport()),
        "nsp": socket.ns(),
        "data": socket.data::<Value>().and_then(Result::ok).unwrap_or_else(|| json!({})),
        "handshake": handshake_json(&handshake),
        "rooms": rooms,
    })
}

/// A socket of any server of the cluster; this server's own are described in full.
fn remote_json(io: &Io, nsp: &str, socket: &RemoteSocket) -> Value {
    if let Some(local) = io.of(nsp).and_then(|ns| ns.get_socket(socket.id)) {
        return socket_json(&local);
    }
    let rooms: Vec<&str> = socket.rooms.iter().map(|r| r.as_ref()).collect();
    json!({
        "id": socket.id.as_str(),
        "nsp": nsp,
        "data": if socket.data.is_null() { json!({}) } else { socket.data.clone() },
        "handshake": handshake_json(&socket.handshake),
        "rooms": rooms,
    })
}

/// Every socket of every namespace, on every server of the cluster.
pub(crate) async fn all_sockets(io: &Io) -> Vec<Value> {
    let mut out = Vec::new();
    for name in io.namespaces() {
        let Some(ns) = io.of(&name) else { continue };
        match ns.fetch_sockets().await {
            Ok(sockets) => out.extend(sockets.iter().map(|s| remote_json(io, &name, s))),
            Err(e) => tracing::debug!(ns = name, error = %e, "cannot fetch the sockets"),
        }
    }
    out
}

/// `when` as JavaScript's `Date.prototype.toJSON` writes it: `2024-05-01T12:00:00.000Z`.
pub(crate) fn date(when: SystemTime) -> String {
    let since = when.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_read_like_javascript_ones() {
        assert_eq!(date(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let when = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(date(when), "2024-02-29T23:59:59.123Z");
    }
}
