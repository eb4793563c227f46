//! Outbound flow control seen from the Socket.IO layer: what an emit to a client that reads
//! nothing returns, and the reason its socket is disconnected with.

mod common;

use std::time::Duration;

use ferrio::{DisconnectReason, EmitError, Io};
use tokio::sync::mpsc;

#[tokio::test]
async fn a_client_at_its_outbound_limit_is_told_to_the_emitter_and_disconnected_as_slow() {
    let (tx, mut sockets) = mpsc::unbounded_channel();
    let builder = Io::builder().engine(|config| {
        config
            .outbound_budget(1024)
            .outbound_limit(4096)
            .outbound_stall_timeout(Duration::from_secs(60))
    });
    let (addr, _io) = common::server(builder, |io| common::hand_sockets(io, "/", tx)).await;
    // A polling client that never polls again takes nothing from its queue.
    let client = common::polling::PollingClient::connect(addr).await;
    client.join("/").await;
    let socket = common::recv(&mut sockets).await;
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
    common::report_disconnect(&socket, &reasons_tx);

    let chunk = "x".repeat(1000);
    let mut queued = 0;
    let refused = loop {
        match socket.emit("chunk", &chunk) {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
        assert!(
            queued < 10,
            "the limit of 4 096 bytes holds four of these at most"
        );
    };
    assert!(matches!(refused, EmitError::Full), "{refused:?}");
    assert_eq!(queued, 4);
    assert_eq!(
        common::recv(&mut reasons).await,
        ("/".to_owned(), DisconnectReason::SlowClient)
    );
    assert_eq!(DisconnectReason::SlowClient.as_str(), "slow client");
    assert!(matches!(
        socket.emit("chunk", &chunk),
        Err(EmitError::Closed)
    ));
}
