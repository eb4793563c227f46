//! What adapters tell each other about sockets and server-side events: [`RemoteSocketData`],
//! [`HandshakeData`], [`ServerAck`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrio_engine::{Handshake, Sid};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::Room;
use crate::payload::Payload;

/// A socket as one server describes it to the others ([`fetch_sockets`]): the shape the
/// Node.js adapters exchange, `{id, handshake, rooms, data}`.
///
/// [`fetch_sockets`]: crate::BroadcastOperator::fetch_sockets
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSocketData {
    /// The socket's id.
    #[serde(with = "sid_string")]
    pub id: Sid,
    /// The request that opened its connection.
    #[serde(default)]
    pub handshake: HandshakeData,
    /// Its rooms, its own included.
    #[serde(default)]
    pub rooms: Vec<Room>,
    /// The data the application shared with [`SocketRef::set_data`](crate::SocketRef::set_data)
    /// (`null` when none).
    #[serde(default)]
    pub data: Value,
}

/// The handshake of a socket in the shape the Node.js servers describe it (every field
/// optional when read, so any server's description decodes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandshakeData {
    /// Request headers, lower-case names (a value is a string, or an array of strings).
    pub headers: Map<String, Value>,
    /// When the connection opened, as an HTTP date.
    pub time: String,
    /// The client's address (empty when the server did not record it).
    pub address: String,
    /// Whether the request came from another origin.
    pub xdomain: bool,
    /// Whether the connection is encrypted (as far as the server knows).
    pub secure: bool,
    /// When the connection opened, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// The request's path and query.
    pub url: String,
    /// The query parameters.
    pub query: Map<String, Value>,
    /// The `auth` payload of the socket's CONNECT.
    pub auth: Value,
}

impl HandshakeData {
    /// Describes an Engine.IO handshake and a socket's auth.
    pub fn new(handshake: &Handshake, auth: Value) -> Self {
        let mut headers = Map::new();
        for (name, value) in handshake.headers() {
            let Ok(value) = value.to_str() else { continue };
            match headers.get_mut(name.as_str()) {
                Some(Value::String(first)) => {
                    first.push_str(", ");
                    first.push_str(value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
                }
            }
        }
        let query = form_urlencoded::parse(handshake.query().unwrap_or_default().as_bytes())
            .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
            .collect();
        let since_epoch = handshake
            .issued_at()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let origin = handshake.headers().get(http::header::ORIGIN);
        let host = handshake.headers().get(http::header::HOST);
        let xdomain = origin.is_some_and(|origin| {
            let origin = origin.to_str().unwrap_or_default();
            let host = host.and_then(|h| h.to_str().ok()).unwrap_or_default();
            !origin.ends_with(&format!("://{host}"))
        });
        Self {
            headers,
            time: http_date(handshake.issued_at()),
            address: handshake
                .remote_addr()
                .map(|addr| addr.ip().to_string())
                .unwrap_or_default(),
            xdomain,
            secure: handshake.uri().scheme_str() == Some("https"),
            issued: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
            url: handshake
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_default(),
            query,
            auth,
        }
    }
}

/// `time` as an HTTP date (`Wed, 02 Dec 2026 19:55:52 GMT`).
fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

mod sid_string {
    use super::*;

    pub(super) fn serialize<S: Serializer>(sid: &Sid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(sid.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Sid, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Sid::parse(&text).ok_or_else(|| serde::de::Error::custom(ferrio_engine::InvalidSid))
    }
}

/// The reply to a server-side event from another server, for events emitted with
/// [`server_side_emit_with_ack`](crate::NamespaceRef::server_side_emit_with_ack): the
/// adapter that received the event makes one with what carries the answer back.
pub struct ServerAck(Option<Box<dyn FnOnce(Payload) + Send>>);

impl ServerAck {
    /// A reply that hands the answer to `reply`.
    pub fn new(reply: impl FnOnce(Payload) + Send + 'static) -> Self {
        Self(Some(Box::new(reply)))
    }

    /// A reply to an event that asked for none: sending it does nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// Whether the emitting server waits for an answer.
    pub fn is_requested(&self) -> bool {
        self.0.is_some()
    }

    /// Answers with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), crate::payload::PayloadError> {
        self.send_args(&(data,))
    }

    /// Answers with the elements of `args` as arguments.
    pub fn send_args<A: Serialize + ?Sized>(
        self,
        args: &A,
    ) -> Result<(), crate::payload::PayloadError> {
        if let Some(reply) = self.0 {
            reply(Payload::from_args(args)?);
        }
        Ok(())
    }
}

impl fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAck")
            .field("requested", &self.is_requested())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_civil_dates() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            http_date(at(1_796_241_352)),
            "Wed, 02 Dec 2026 19:55:52 GMT"
        );
    }

    #[test]
    fn remote_socket_data_reads_a_node_description() {
        let json = r#"{"id":"aaaaaaaaaaaaaaaaaaaa","handshake":{"headers":{"set-cookie":["a","b"]},
            "time":"x","address":"::1","xdomain":false,"secure":false,"issued":1,"url":"/",
            "query":{"EIO":"4"},"auth":{}},"rooms":["aaaaaaaaaaaaaaaaaaaa","r"],"data":{"n":1}}"#;
        let data: RemoteSocketData = serde_json::from_str(json).unwrap();
        assert_eq!(data.rooms.len(), 2);
        assert_eq!(data.handshake.query["EIO"], "4");
        assert!(serde_json::from_str::<RemoteSocketData>(r#"{"id":"short"}"#).is_err());
    }
}
