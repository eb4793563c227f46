//! Outbound messages: what waits in a session's queue, messages prepared once for many
//! sockets, and the error of a send that could not be queued.

use std::fmt;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::handler::Message;

/// One packet waiting in a session's outbound queue.
///
/// Text frames hold the complete Engine.IO packet (type digit included), so the same buffer
/// becomes a WebSocket frame or a piece of a polling payload without being copied again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
}

impl Frame {
    pub(crate) fn ping() -> Self {
        Self::Text(Utf8Bytes::from_static("2"))
    }
    pub(crate) fn close() -> Self {
        Self::Text(Utf8Bytes::from_static("1"))
    }
    pub(crate) fn noop() -> Self {
        Self::Text(Utf8Bytes::from_static("6"))
    }

    /// Its payload's size in bytes, as a WebSocket frame carries it.
    pub(crate) fn wire_len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(data) => data.len(),
        }
    }

    /// The bytes it counts for in its session's outbound budget.
    pub(crate) fn len(&self) -> u64 {
        self.wire_len() as u64
    }
}

/// A message encoded once, to be sent to any number of sockets without copying it again.
///
/// ```
/// use ferrio_engine::{PreparedMessage, Socket};
///
/// fn broadcast(sockets: &[Socket], text: &str) {
///     let message = PreparedMessage::text(text); // encoded here, once
///     for socket in sockets {
///         let _ = socket.send_prepared(&message); // a reference count per recipient
///     }
/// }
///
/// // An encoder that writes the `4` packet type itself hands its buffer over as is.
/// assert!(PreparedMessage::from_message_packet("4hello".to_owned()).is_some());
/// assert!(PreparedMessage::from_message_packet("hello".to_owned()).is_none());
/// # broadcast(&[], "hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMessage(pub(crate) Frame);

impl PreparedMessage {
    /// Its size in bytes, as it counts in a session's outbound budget.
    pub fn len(&self) -> usize {
        usize::try_from(self.0.len()).unwrap_or(usize::MAX)
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PreparedMessage {
    /// A text message (the `4` packet type is added here, once).
    pub fn text(text: &str) -> Self {
        let mut packet = String::with_capacity(text.len() + 1);
        packet.push('4');
        packet.push_str(text);
        Self(Frame::Text(Utf8Bytes::from(packet)))
    }

    /// A text message from a string that already starts with the `4` packet type, as an
    /// encoder that writes the prefix itself produces; `None` if it does not.
    pub fn from_message_packet(mut packet: String) -> Option<Self> {
        if !packet.starts_with('4') {
            return None;
        }
        // An encoder that grew its buffer by doubling may leave up to half of it unused, and
        // a queued message holds its whole buffer for as long as the slowest recipient has
        // not read it: large ones are trimmed to their length once, here.
        if packet.capacity() > 4096 && packet.capacity() - packet.len() > packet.len() / 8 {
            packet.shrink_to_fit();
        }
        Some(Self(Frame::Text(Utf8Bytes::from(packet))))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self(Frame::Binary(data.into()))
    }

    /// The message as a client receives it (text without its `4` packet type), sharing the
    /// buffer.
    pub fn to_message(&self) -> Message {
        match &self.0 {
            Frame::Text(text) => {
                let text = crate::Utf8Bytes::whole(text.clone());
                // Past the ASCII packet type: a char boundary, so this is never the empty text.
                Message::Text(text.slice(1..text.len()).unwrap_or_default())
            }
            Frame::Binary(data) => Message::Binary(data.clone()),
        }
    }
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> Self {
        match message {
            Message::Text(text) => Self::text(text.as_str()),
            Message::Binary(data) => Self::binary(data),
        }
    }
}

/// A send that failed; the message is handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError<T> {
    /// The session holds its [`outbound_limit`](crate::EngineIoConfig::outbound_limit) of
    /// messages its client has not read: it is being closed as a slow client.
    Full(T),
    /// The session has closed.
    Closed(T),
}

impl<T> SendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Closed(t) => t,
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the session's client has too much unread (slow client)"),
            Self::Closed(_) => f.write_str("the session is closed"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for SendError<T> {}
