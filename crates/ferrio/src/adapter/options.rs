//! [`BroadcastOptions`]: which sockets a broadcast or a bulk operation targets.

use serde::{Deserialize, Serialize};

use super::Room;

/// Which sockets a broadcast or a bulk operation targets, and how.
///
/// Serializes as the Node.js adapters write it, `{"rooms":[..],"except":[..],"flags":{..}}`,
/// so adapters can put it on the wire as is.
///
/// ```
/// use ferrio::adapter::BroadcastOptions;
///
/// let mut opts = BroadcastOptions::default();
/// opts.rooms.push("news".into());
/// opts.flags.volatile = true;
/// let json = serde_json::to_string(&opts).unwrap();
/// assert_eq!(json, r#"{"rooms":["news"],"except":[],"flags":{"volatile":true}}"#);
/// assert_eq!(serde_json::from_str::<BroadcastOptions>(&json).unwrap(), opts);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    #[serde(default)]
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms (a socket id names that socket).
    #[serde(default)]
    pub except: Vec<Room>,
    /// How the packet travels.
    #[serde(default)]
    pub flags: BroadcastFlags,
}

/// How a broadcast travels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// This server only, even with a distributed adapter.
    #[serde(default, skip_serializing_if = "is_false")]
    pub local: bool,
    /// Drop the packet for sockets whose transport is behind (packets still queued for
    /// them) instead of queueing it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub volatile: bool,
    /// For a broadcast with acks: how long to wait for the answers, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

fn is_false(value: &bool) -> bool {
    !*value
}
