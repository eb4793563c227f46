//! Packets that break a decoder rule, or the namespace state, of the Socket.IO v5 protocol
//! (socket.io-protocol, v5): each closes the whole connection, leaks nothing (the engine and
//! namespace counts return to what they were), and leaves other clients served. Over WebSocket
//! and over long-polling.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::polling::PollingClient;
use common::{
    Client, Frame, assert_next_is_echo, echo_handlers, eventually, joined_to, recv,
    report_disconnect, server,
};
use ferrio::{ConnectHandler, DisconnectReason, Io, SocketRef};
use ferrio_protocol::engine::Packet;
use ferrio_protocol::socketio::MAX_DEPTH;
use tokio::sync::{Semaphore, mpsc};

/// A message a test client sends: a Socket.IO text packet or a binary message.
#[derive(Debug, Clone)]
enum Out {
    Text(String),
    Binary(Vec<u8>),
}

impl From<&str> for Out {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Out {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

fn bin(data: &[u8]) -> Out {
    Out::Binary(data.to_vec())
}

fn ph(num: &str) -> String {
    format!(r#"{{"_placeholder":true,"num":{num}}}"#)
}

/// An event whose one argument nests `levels` arrays (the data array is one level more).
///
/// The Socket.IO v5 protocol (socket.io-protocol, v5) sets no bound, so it is the implementation's;
/// the tests take the codec's [`MAX_DEPTH`] and check both sides of it.
fn deep_event(levels: usize) -> String {
    format!(r#"2["echo",{}{}]"#, "[".repeat(levels), "]".repeat(levels))
}

/// Sockets and connections the server holds.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    connections: usize,
    root: usize,
    a: usize,
    c: usize,
    slow: usize,
}

/// A server with `/`, `/a` and `/c` (echo and ack handlers) and `/slow` (a middleware that
/// waits for a permit), and a healthy client in `/` and `/a`.
struct Harness {
    addr: SocketAddr,
    io: Io,
    healthy: Client,
    baseline: Counts,
    gate: Arc<Semaphore>,
    /// One message per `/slow` middleware run that ended (completed or dropped).
    middleware_done: mpsc::UnboundedReceiver<()>,
}

/// Sends on drop: tells the test a middleware's future is gone, however it ended.
struct Done(mpsc::UnboundedSender<()>);

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Harness {
    async fn new() -> Self {
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let (done_tx, middleware_done) = mpsc::unbounded_channel();
        let (addr, io) = server(Io::builder(), |io| {
            io.ns("/", |s: SocketRef| echo_handlers(&s));
            io.ns("/a", |s: SocketRef| echo_handlers(&s));
            io.ns("/c", |s: SocketRef| echo_handlers(&s));
            let wait = move || {
                let g = g.clone();
                let done = Done(done_tx.clone());
                async move {
                    g.acquire().await.unwrap().forget();
                    drop(done);
                    Ok::<(), &'static str>(())
                }
            };
            io.ns("/slow", (|s: SocketRef| echo_handlers(&s)).with(wait));
        })
        .await;
        let healthy = joined_to(addr, &["/", "/a"]).await;
        let mut harness = Self {
            addr,
            io,
            healthy,
            baseline: Counts {
                connections: 0,
                root: 0,
                a: 0,
                c: 0,
                slow: 0,
            },
            gate,
            middleware_done,
        };
        harness.baseline = harness.counts();
        assert_eq!(
            harness.baseline,
            Counts {
                connections: 1,
                root: 1,
                a: 1,
                c: 0,
                slow: 0
            }
        );
        harness
    }

    fn counts(&self) -> Counts {
        let len = |name: &str| self.io.of(name).map_or(0, |ns| ns.len());
        Counts {
            connections: self.io.engine().unwrap().len(),
            root: len("/"),
            a: len("/a"),
            c: len("/c"),
            slow: len("/slow"),
        }
    }

    /// A new client in `/` and `/a`.
    async fn victim(&self) -> Client {
        let mut victim = Client::connect(self.addr).await;
        victim.join("/", None).await;
        victim.join("/a", None).await;
        victim
    }

    /// Waits for the counts to return to the baseline, then checks the healthy client.
    async fn assert_clean(&mut self) {
        eventually("connection and sockets released", || {
            self.counts() == self.baseline
        })
        .await;
        for nsp in ["/", "/a"] {
            assert_next_is_echo(&mut self.healthy, nsp, "healthy").await;
        }
    }
}

async fn send_all(client: &mut Client, frames: &[Out]) {
    for frame in frames {
        match frame {
            Out::Text(text) => client.send(text).await,
            Out::Binary(data) => client.send_binary(data).await,
        }
    }
}

/// A client in `/` and `/a` sends `frames`: the server must close the connection.
async fn assert_closes(frames: Vec<Out>) {
    let mut harness = Harness::new().await;
    let mut victim = harness.victim().await;
    send_all(&mut victim, &frames).await;
    victim.assert_closed().await;
    harness.assert_clean().await;
}

/// A client that joined nothing sends `frames`: the server must close the connection.
async fn assert_closes_unjoined(frames: Vec<Out>) {
    let mut harness = Harness::new().await;
    let mut victim = Client::connect(harness.addr).await;
    send_all(&mut victim, &frames).await;
    victim.assert_closed().await;
    harness.assert_clean().await;
}

macro_rules! closes {
    ($($name:ident: $($frame:expr),+;)*) => {$(
        #[tokio::test]
        async fn $name() {
            assert_closes(vec![$(Out::from($frame)),+]).await;
        }
    )*};
}

// ---------------------------------------------------------------- packet type

closes! {
    unknown_type_7: "7";
    unknown_type_8_with_data: r#"8["echo"]"#;
    unknown_type_letter: r#"x["echo"]"#;
    empty_packet: "";
    client_connect_error: "4{}";
    client_connect_error_without_data: "4";
    client_connect_error_in_a_namespace: r#"4/a,{"message":"x"}"#;
}

// ---------------------------------------------------------------- event and ack data

closes! {
    event_without_data: "2";
    event_with_ack_id_without_data: "25";
    event_with_an_empty_array: "2[]";
    event_named_by_an_object: "2[{}]";
    event_named_by_null: "2[null]";
    event_named_by_a_boolean: "2[true]";
    event_named_by_an_array: r#"2[["echo"]]"#;
    event_data_is_an_object: r#"2{"echo":1}"#;
    event_data_is_a_string: r#"2"echo""#;
    event_reserved_connect: r#"2["connect"]"#;
    event_reserved_connect_error: r#"2["connect_error"]"#;
    event_reserved_disconnect: r#"2["disconnect"]"#;
    event_reserved_disconnecting: r#"2["disconnecting"]"#;
    event_reserved_new_listener: r#"2["newListener","echo"]"#;
    event_reserved_remove_listener: r#"2["removeListener","echo"]"#;
    event_reserved_with_ack_id_in_a_namespace: r#"2/a,5["disconnect"]"#;
    event_reserved_written_with_an_escape: r#"2["conn\u0065ct"]"#;
    binary_event_reserved: format!(r#"51-["connect",{}]"#, ph("0")), bin(&[1]);
    ack_without_id: "3[]";
    ack_without_data: "31";
    ack_data_is_an_object: "31{}";
    ack_data_is_a_string: r#"31"x""#;
}

// ---------------------------------------------------------------- attachments

closes! {
    attachments_zero: format!(r#"50-["echo",{}]"#, ph("0"));
    attachments_eleven: format!(
        r#"511-["echo",{}]"#,
        (0..11).map(|i| ph(&i.to_string())).collect::<Vec<_>>().join(",")
    );
    attachments_not_a_number: format!(r#"5x-["echo",{}]"#, ph("0"));
    attachments_without_count: format!(r#"5-["echo",{}]"#, ph("0"));
    attachments_without_dash: format!(r#"51["echo",{}]"#, ph("0"));
    binary_ack_attachments_zero: "60-1[]";
    attachment_header_on_an_event: r#"21-["echo"]"#;
    attachment_header_on_an_ack: "31-1[]";
    attachment_header_on_a_connect: "0/c,1-";
    attachment_header_on_a_disconnect: "1/a,1-";
    binary_frame_when_none_is_pending: bin(&[1, 2, 3]);
    binary_frame_after_the_attachments_are_complete:
        format!(r#"51-["echo",{}]"#, ph("0")), bin(&[1]), bin(&[2]);
    text_while_attachments_are_pending:
        format!(r#"52-["echo",{},{}]"#, ph("0"), ph("1")), bin(&[1]), r#"2["echo"]"#;
    text_before_any_attachment: format!(r#"51-["echo",{}]"#, ph("0")), r#"2["echo"]"#;
    connect_while_attachments_are_pending: format!(r#"51-["echo",{}]"#, ph("0")), "0/c,";
    placeholder_num_out_of_range: format!(r#"51-["echo",{}]"#, ph("1")), bin(&[1]);
    placeholder_num_negative: format!(r#"51-["echo",{}]"#, ph("-1")), bin(&[1]);
    placeholder_num_not_an_integer: format!(r#"51-["echo",{}]"#, ph("0.5")), bin(&[1]);
    placeholder_num_a_string: format!(r#"51-["echo",{}]"#, ph(r#""0""#)), bin(&[1]);
    placeholder_num_missing: r#"51-["echo",{"_placeholder":true}]"#, bin(&[1]);
    placeholder_flag_false: r#"51-["echo",{"_placeholder":false,"num":0}]"#, bin(&[1]);
    placeholder_flag_a_string: r#"51-["echo",{"_placeholder":"true","num":0}]"#, bin(&[1]);
    placeholder_with_an_extra_key: r#"51-["echo",{"_placeholder":true,"num":0,"x":1}]"#, bin(&[1]);
    placeholder_nested_out_of_range:
        format!(r#"52-["echo",{{"a":[{},{}]}}]"#, ph("0"), ph("2")), bin(&[1]), bin(&[2]);
    binary_ack_placeholder_out_of_range: format!("61-3[{}]", ph("1")), bin(&[1]);
}

// ---------------------------------------------------------------- ack ids

closes! {
    event_ack_id_of_2_pow_53: r#"29007199254740992["ack"]"#;
    ack_id_of_2_pow_53: "39007199254740992[]";
    ack_id_overflowing_64_bits: r#"299999999999999999999999999["ack"]"#;
}

#[tokio::test]
async fn ack_id_of_2_pow_53_minus_1_is_accepted() {
    let mut harness = Harness::new().await;
    let mut client = harness.victim().await;
    client.send(r#"29007199254740991["ack","max"]"#).await;
    assert_eq!(client.text().await, r#"39007199254740991["max"]"#);
    // An ack of ours with that id is simply unknown.
    client.send("39007199254740991[]").await;
    client.send(r#"2["echo","kept"]"#).await;
    assert_eq!(client.text().await, r#"2["echo","kept"]"#);
    assert_eq!(harness.counts().root, 2);
    drop(client);
    harness.assert_clean().await;
}

// ---------------------------------------------------------------- namespace state

closes! {
    event_for_a_namespace_not_joined: r#"2/c,["echo"]"#;
    event_for_an_unknown_namespace: r#"2/nope,["echo"]"#;
    ack_for_a_namespace_not_joined: "3/c,1[]";
    disconnect_for_a_namespace_not_joined: "1/c,";
    binary_event_for_a_namespace_not_joined: format!(r#"51-/c,["echo",{}]"#, ph("0")), bin(&[1]);
    event_after_leaving_the_namespace: "1/a,", r#"2/a,["echo"]"#;
    second_connect_for_the_root_namespace: "0";
    second_connect_for_a_namespace: "0/a,";
    second_connect_with_auth: r#"0/a,{"token":1}"#;
    namespace_without_comma_swallows_the_data: r#"2/a["echo"]"#;
    namespace_not_starting_with_a_slash: r#"2a,["echo"]"#;
}

#[tokio::test]
async fn packets_before_any_connect_close_the_connection() {
    assert_closes_unjoined(vec![r#"2["echo"]"#.into()]).await;
    assert_closes_unjoined(vec!["31[]".into()]).await;
    assert_closes_unjoined(vec!["1".into()]).await;
    assert_closes_unjoined(vec![bin(&[1])]).await;
}

#[tokio::test]
async fn a_second_connect_while_the_first_is_pending_closes_the_connection() {
    let mut harness = Harness::new().await;
    let mut victim = Client::connect(harness.addr).await;
    victim.send("0/slow,").await;
    victim.send("0/slow,").await;
    victim.assert_closed().await;
    // Let the pending middleware finish (or see it dropped): the socket it would admit
    // must not stay in `/slow`.
    harness.gate.add_permits(1);
    recv(&mut harness.middleware_done).await;
    harness.assert_clean().await;
}

#[tokio::test]
async fn packets_for_a_namespace_whose_connect_is_pending_close_the_connection() {
    for packet in [r#"2/slow,["echo"]"#, "1/slow,", "3/slow,1[]"] {
        let mut harness = Harness::new().await;
        let mut victim = harness.victim().await;
        victim.send("0/slow,").await;
        victim.send(packet).await;
        victim.assert_closed().await;
        harness.gate.add_permits(1);
        recv(&mut harness.middleware_done).await;
        harness.assert_clean().await;
    }
}

// ---------------------------------------------------------------- CONNECT and DISCONNECT data

closes! {
    connect_data_a_string: r#"0/c,"x""#;
    connect_data_an_array: "0/c,[1]";
    connect_data_null: "0/c,null";
    connect_data_invalid_json: "0/c,{";
    connect_with_an_ack_id: "0/c,1{}";
    disconnect_with_an_object: "1{}";
    disconnect_with_a_string: r#"1/a,"bye""#;
    disconnect_with_an_ack_id: "1/a,5";
}

#[tokio::test]
async fn connect_data_that_is_not_an_object_closes_even_the_first_connect() {
    assert_closes_unjoined(vec![r#"0"x""#.into()]).await;
    assert_closes_unjoined(vec!["0[1]".into()]).await;
}

// ---------------------------------------------------------------- JSON syntax and depth

closes! {
    trailing_garbage_after_an_event: r#"2["echo"]x"#;
    trailing_array_after_an_event: r#"2["echo"][]"#;
    trailing_bracket_after_an_event: r#"2["echo"]]"#;
    trailing_garbage_after_connect_data: "0/c,{}x";
    trailing_garbage_after_an_ack: "31[]x";
    invalid_json_in_an_event: r#"2["echo",}"#;
    nesting_far_too_deep: deep_event(200);
    nesting_one_level_past_the_bound: deep_event(MAX_DEPTH);
    ack_nesting_one_level_past_the_bound:
        format!("31[{}{}]", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    connect_auth_nesting_one_level_past_the_bound:
        format!(r#"0/c,{{"a":{}{}}}"#, "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
}

#[tokio::test]
async fn nesting_exactly_at_the_bound_is_accepted() {
    let mut harness = Harness::new().await;
    let mut client = harness.victim().await;
    // The data array (or the auth object) is the first of MAX_DEPTH levels.
    let inner = MAX_DEPTH - 1;
    client.send(&deep_event(inner)).await;
    assert_eq!(client.text().await, deep_event(inner));
    client
        .send(&format!("3999[{}{}]", "[".repeat(inner), "]".repeat(inner)))
        .await;
    let auth = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
    client.join("/c", Some(&auth)).await;
    assert_eq!(harness.counts().c, 1);
    drop(client);
    harness.assert_clean().await;
}

#[tokio::test]
async fn a_binary_ack_for_an_unknown_id_is_ignored() {
    let mut harness = Harness::new().await;
    let mut client = harness.victim().await;
    client.send(&format!("61-99[{}]", ph("0"))).await;
    client.send_binary(&[7]).await;
    client.send(r#"2["echo","kept"]"#).await;
    assert_eq!(client.text().await, r#"2["echo","kept"]"#);
    drop(client);
    harness.assert_clean().await;
}

// ---------------------------------------------------------------- over long-polling

/// A polling client in `/` posts `packets` in one payload: the session must end, after the
/// packets before the bad one were handled (their replies are returned).
async fn assert_polling_closes(packets: &[Packet<'_>]) -> Vec<Frame> {
    let mut harness = Harness::new().await;
    let victim = PollingClient::connect(harness.addr).await;
    victim.join("/").await;
    assert_eq!(harness.counts().root, 2);
    victim.send_packets(packets).await;
    let frames = victim.assert_closed().await;
    harness.assert_clean().await;
    frames
}

#[tokio::test]
async fn polling_unknown_type_closes_the_session() {
    assert!(
        assert_polling_closes(&[Packet::Message("7")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn polling_client_connect_error_closes_the_session() {
    assert!(
        assert_polling_closes(&[Packet::Message("4{}")])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn polling_reserved_event_closes_the_session() {
    let frames = assert_polling_closes(&[Packet::Message(r#"2["disconnecting"]"#)]).await;
    assert!(frames.is_empty());
}

#[tokio::test]
async fn polling_binary_message_with_none_pending_closes_the_session() {
    assert!(
        assert_polling_closes(&[Packet::Binary(vec![1, 2])])
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn polling_text_while_attachments_are_pending_closes_the_session() {
    let header = format!(r#"51-["echo",{}]"#, ph("0"));
    let frames =
        assert_polling_closes(&[Packet::Message(&header), Packet::Message(r#"2["echo",1]"#)]).await;
    assert!(frames.is_empty());
}

#[tokio::test]
async fn polling_packets_before_the_bad_one_are_handled_and_none_after() {
    let header = format!(r#"51-["echo",{}]"#, ph("0"));
    let frames = assert_polling_closes(&[
        Packet::Message(r#"2["echo",1]"#),
        Packet::Message(&header),
        Packet::Binary(vec![9]),
        Packet::Message("2[]"),
        Packet::Message(r#"2["echo",2]"#),
    ])
    .await;
    assert_eq!(
        frames,
        [
            Frame::Text(r#"2["echo",1]"#.to_owned()),
            Frame::Text(header),
            Frame::Binary(vec![9].into()),
        ]
    );
}

#[tokio::test]
async fn polling_nesting_too_deep_closes_the_session() {
    let deep = deep_event(200);
    assert!(
        assert_polling_closes(&[Packet::Message(&deep)])
            .await
            .is_empty()
    );
}

// ---------------------------------------------------------------- the reason

#[tokio::test]
async fn a_parse_error_disconnects_every_namespace_with_reason_parse_error() {
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (addr, _io) = server(Io::builder(), |io| {
        for name in ["/", "/a"] {
            let tx = tx.clone();
            io.ns(name, move |socket: SocketRef| {
                report_disconnect(&socket, &tx);
            });
        }
    })
    .await;
    let mut victim = joined_to(addr, &["/", "/a"]).await;
    victim.send("2[]").await;
    victim.assert_closed().await;
    let mut seen = vec![recv(&mut reasons).await, recv(&mut reasons).await];
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("/".to_owned(), DisconnectReason::ParseError),
            ("/a".to_owned(), DisconnectReason::ParseError)
        ]
    );
}
