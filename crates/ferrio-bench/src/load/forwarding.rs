//! The forwarding scenario: polling-only sessions through one address, the runner's proxy in
//! front of the nodes of a cluster that serves without sticky sessions (see `proxy.rs`).
//!
//! 1. Acked echoes: `clients` polling-only clients each POST `42<id>["echo",P]` and long-poll
//!    `43<id>[P]` on the pending GET, one echo in flight each, between the `start` and `end`
//!    marks (the echo loop of the polling scenario).
//! 2. Idle sessions: after the `baseline` mark, `sockets` polling sessions are opened and
//!    each keeps a GET pending; the runner reads the nodes' RSS at the `connected` mark.
//!
//! Behind a round-robin proxy most of these requests reach a node that does not own the
//! session and passes them on; behind an affinity proxy none do.

use serde_json::{Value, json};

use super::{KeepReading, LoadConfig, Marks, echo_loop, json_echoes};
use crate::BoxError;

pub(super) async fn forwarding(config: &LoadConfig, marks: &mut Marks) -> Result<Value, BoxError> {
    let clients = config.connect_polling(config.clients).await?;
    let mut result = echo_loop(json_echoes(clients, config), config, marks).await?;

    marks.mark("baseline").await?;
    let sessions = config.connect_polling(config.sockets).await?;
    let reading = KeepReading::start(sessions);
    marks.mark("connected").await?;
    for session in reading.stop("idle polling sessions").await? {
        // Closed at once, the pending GET with it.
        session.abort();
    }
    result["sockets"] = json!(config.sockets);
    Ok(result)
}
