//! [`AckSender`]: the server answering an event the client sent with an ack.

use std::fmt;

use serde::Serialize;

use super::SocketRef;
use crate::error::EmitError;

/// Answers the client's event: the extractor for events the client sent with an ack.
///
/// Sending consumes the sender, so an event is acknowledged at most once. When the client
/// asked for no ack, sending does nothing.
pub struct AckSender {
    socket: SocketRef,
    id: Option<u64>,
}

impl AckSender {
    pub(crate) fn new(socket: SocketRef, id: Option<u64>) -> Self {
        Self { socket, id }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn is_requested(&self) -> bool {
        self.id.is_some()
    }

    /// Acknowledges with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_args(&(data,))
    }

    /// Acknowledges with the elements of `args` (a tuple, a `Vec`, a [`Payload`]...) as
    /// arguments.
    ///
    /// [`Payload`]: crate::Payload
    pub fn send_args<A: Serialize + ?Sized>(self, args: &A) -> Result<(), EmitError> {
        match self.id {
            Some(id) => self.socket.send_ack(id, args),
            None => Ok(()),
        }
    }
}

impl SocketRef {
    pub(crate) fn send_ack<A: Serialize + ?Sized>(
        &self,
        id: u64,
        args: &A,
    ) -> Result<(), EmitError> {
        let packet = self.0.ns.parser().ack(self.ns(), id, args)?;
        Ok(packet.send(&self.0.engine)?)
    }
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("socket", &self.socket.id())
            .field("id", &self.id)
            .finish()
    }
}
