//! Joining namespaces: CONNECT replies, socket ids, unknown namespaces.

mod common;

use common::{Client, server};
use ferrio::{Io, SocketRef};

#[tokio::test]
async fn connect_reply_carries_a_socket_id_distinct_from_the_engine_sid() {
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/", |_: SocketRef| {});
    })
    .await;
    let mut client = Client::connect(addr).await;
    let id = client.join("/", None).await;
    assert_eq!(id.len(), 20);
    assert_ne!(id, client.sid);
}

#[tokio::test]
async fn unknown_namespace_is_refused_and_the_connection_kept() {
    let (addr, _io) = server(Io::builder(), |_| {}).await;
    let mut client = Client::connect(addr).await;
    client.send("0/nope,").await;
    assert_eq!(
        client.text().await,
        r#"4/nope,{"message":"Invalid namespace"}"#
    );
    client.join("/", None).await;
}
