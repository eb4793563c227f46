//! Channel names: where each message of one namespace is published.

/// The channel names of one namespace under one key prefix (the Node adapter's `key`
/// option, `socket.io` by default).
///
/// ```
/// use ferrio_redis::wire::{Channels, ReceivedOn};
///
/// let channels = Channels::new("socket.io", "/");
/// assert_eq!(channels.broadcast(), "socket.io#/#");
/// assert_eq!(channels.broadcast_pattern(), "socket.io#/#*");
/// assert_eq!(channels.request(), "socket.io-request#/#");
/// assert_eq!(channels.response_to("abc123"), "socket.io-response#/#abc123#");
/// assert_eq!(channels.received_on(b"socket.io#/#news#"), Some(ReceivedOn::Room("news")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    prefix: String,
    broadcast: String,
    request: String,
    response: String,
}

/// Which of a namespace's channels a message came on, from [`Channels::received_on`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedOn<'a> {
    /// The broadcast channel, `<prefix>#<nsp>#`.
    Broadcast,
    /// A single-room channel, `<prefix>#<nsp>#<room>#`.
    Room(&'a str),
    /// The request channel, `<prefix>-request#<nsp>#`.
    Request,
    /// The shared response channel, `<prefix>-response#<nsp>#`.
    Response,
    /// The response channel of one server, `<prefix>-response#<nsp>#<uid>#`.
    ResponseTo(&'a str),
}

impl Channels {
    /// The channels of namespace `nsp` (such as `/` or `/chat`) under `prefix`.
    pub fn new(prefix: &str, nsp: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            broadcast: format!("{prefix}#{nsp}#"),
            request: format!("{prefix}-request#{nsp}#"),
            response: format!("{prefix}-response#{nsp}#"),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Broadcasts to the whole namespace, or to no room or several rooms: `<prefix>#<nsp>#`.
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// Broadcasts to exactly one room (a socket id counts as a room): `<prefix>#<nsp>#<room>#`.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.broadcast)
    }

    /// Where a broadcast to `rooms` is published: the room's channel for exactly one room,
    /// the broadcast channel otherwise.
    pub fn for_rooms<R: AsRef<str>>(&self, rooms: &[R]) -> String {
        match rooms {
            [room] => self.room(room.as_ref()),
            _ => self.broadcast.clone(),
        }
    }

    /// The `PSUBSCRIBE` pattern matching the broadcast channel and every room channel:
    /// `<prefix>#<nsp>#*`. Glob characters in the prefix or namespace are escaped, which the
    /// Node adapter does not do; for ordinary names the pattern is the same.
    pub fn broadcast_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.broadcast.len() + 1);
        for c in self.broadcast.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }

    /// Requests to every server: `<prefix>-request#<nsp>#`. `PUBSUB NUMSUB` on it counts the
    /// servers.
    pub fn request(&self) -> &str {
        &self.request
    }

    /// Responses to every server: `<prefix>-response#<nsp>#`.
    pub fn response(&self) -> &str {
        &self.response
    }

    /// Responses to the server `uid`: `<prefix>-response#<nsp>#<uid>#`.
    pub fn response_to(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response)
    }

    /// Which of this namespace's channels `channel` is, or `None` for any other channel.
    /// Matches whole names, so a namespace containing `#` is told apart correctly.
    pub fn received_on<'a>(&self, channel: &'a [u8]) -> Option<ReceivedOn<'a>> {
        let channel = std::str::from_utf8(channel).ok()?;
        if channel == self.broadcast {
            return Some(ReceivedOn::Broadcast);
        }
        if channel == self.request {
            return Some(ReceivedOn::Request);
        }
        if channel == self.response {
            return Some(ReceivedOn::Response);
        }
        if let Some(room) = suffix(channel, &self.broadcast) {
            return Some(ReceivedOn::Room(room));
        }
        suffix(channel, &self.response).map(ReceivedOn::ResponseTo)
    }
}

/// The non-empty `<x>` of `<base><x>#`.
fn suffix<'a>(channel: &'a str, base: &str) -> Option<&'a str> {
    let rest = channel.strip_prefix(base)?.strip_suffix('#')?;
    (!rest.is_empty()).then_some(rest)
}

/// A channel name taken apart by [`parse_channel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedChannel<'a> {
    /// The namespace.
    pub nsp: &'a str,
    /// Which of the namespace's channels it is.
    pub on: ReceivedOn<'a>,
}

/// Takes a channel name under `prefix` apart without knowing the namespace, for tools that
/// watch every namespace. The namespace ends at the first `#`, so this cannot name a
/// namespace that contains `#`; a server should use [`Channels::received_on`] instead.
///
/// ```
/// use ferrio_redis::wire::{ParsedChannel, ReceivedOn, parse_channel};
///
/// assert_eq!(
///     parse_channel("socket.io", b"socket.io#/chat#r1#"),
///     Some(ParsedChannel { nsp: "/chat", on: ReceivedOn::Room("r1") }),
/// );
/// assert_eq!(parse_channel("socket.io", b"other#/#"), None);
/// ```
pub fn parse_channel<'a>(prefix: &str, channel: &'a [u8]) -> Option<ParsedChannel<'a>> {
    let channel = std::str::from_utf8(channel).ok()?;
    let rest = channel.strip_prefix(prefix)?;
    let (kind, rest) = if let Some(rest) = rest.strip_prefix("-request#") {
        (0, rest)
    } else if let Some(rest) = rest.strip_prefix("-response#") {
        (1, rest)
    } else {
        (2, rest.strip_prefix('#')?)
    };
    let (nsp, tail) = rest.split_once('#')?;
    if nsp.is_empty() {
        return None;
    }
    let on = match (kind, tail) {
        (0, "") => ReceivedOn::Request,
        (1, "") => ReceivedOn::Response,
        (2, "") => ReceivedOn::Broadcast,
        (1, tail) => ReceivedOn::ResponseTo(tail.strip_suffix('#').filter(|s| !s.is_empty())?),
        (2, tail) => ReceivedOn::Room(tail.strip_suffix('#').filter(|s| !s.is_empty())?),
        _ => return None,
    };
    Some(ParsedChannel { nsp, on })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_node_adapter() {
        let c = Channels::new("socket.io", "/chat");
        assert_eq!(c.broadcast(), "socket.io#/chat#");
        assert_eq!(c.room("r"), "socket.io#/chat#r#");
        assert_eq!(c.for_rooms(&["r"]), "socket.io#/chat#r#");
        assert_eq!(c.for_rooms(&["r", "s"]), "socket.io#/chat#");
        assert_eq!(c.for_rooms::<&str>(&[]), "socket.io#/chat#");
        assert_eq!(c.request(), "socket.io-request#/chat#");
        assert_eq!(c.response(), "socket.io-response#/chat#");
        assert_eq!(c.response_to("u1"), "socket.io-response#/chat#u1#");
        assert_eq!(Channels::new("a*b", "/").broadcast_pattern(), "a\\*b#/#*");
    }

    #[test]
    fn received_on_is_exact() {
        let c = Channels::new("socket.io", "/a#b");
        assert_eq!(
            c.received_on(b"socket.io#/a#b#"),
            Some(ReceivedOn::Broadcast)
        );
        assert_eq!(
            c.received_on(b"socket.io#/a#b#r#x#"),
            Some(ReceivedOn::Room("r#x"))
        );
        assert_eq!(c.received_on(b"socket.io#/a#b##"), None);
        assert_eq!(c.received_on(b"socket.io#/a#b#r"), None);
        assert_eq!(
            c.received_on(b"socket.io-request#/a#b#"),
            Some(ReceivedOn::Request)
        );
        assert_eq!(
            c.received_on(b"socket.io-response#/a#b#u#"),
            Some(ReceivedOn::ResponseTo("u"))
        );
        assert_eq!(c.received_on(b"socket.io#/other#"), None);
        assert_eq!(c.received_on(b"\xff"), None);
    }

    #[test]
    fn parse_takes_names_apart() {
        let p = |c: &'static [u8]| parse_channel("socket.io", c);
        assert_eq!(
            p(b"socket.io#/#"),
            Some(ParsedChannel {
                nsp: "/",
                on: ReceivedOn::Broadcast
            })
        );
        assert_eq!(
            p(b"socket.io-response#/x#uid#"),
            Some(ParsedChannel {
                nsp: "/x",
                on: ReceivedOn::ResponseTo("uid")
            })
        );
        assert_eq!(
            p(b"socket.io-request#/x#"),
            Some(ParsedChannel {
                nsp: "/x",
                on: ReceivedOn::Request
            })
        );
        assert_eq!(p(b"socket.io-request#/x#y#"), None);
        assert_eq!(p(b"socket.io##"), None);
        assert_eq!(p(b"socket.io#/"), None);
        assert_eq!(p(b"socket.iox#/#"), None);
    }
}
