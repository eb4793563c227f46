//! Handlers and their extractors: what connect, event and disconnect handlers receive, how
//! they may be written, and what happens when an extractor refuses an event.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{
    Client, assert_no_recv, event_server, joined, recv, root_server, server, socket_server,
};
use ferrio::{
    AckSender, Args, Data, DisconnectReason, EmitError, Event, Extension, Io, Payload, SocketRef,
    State, TryData,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

type Tx<T> = mpsc::UnboundedSender<T>;

fn channel<T>() -> (Tx<T>, mpsc::UnboundedReceiver<T>) {
    mpsc::unbounded_channel()
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Auth {
    token: String,
}

#[derive(Debug, Clone, PartialEq)]
struct User(String);

#[derive(Debug, Clone, PartialEq)]
struct Role(&'static str);

// ---------------------------------------------------------------------------------------
// SocketRef, Data, TryData, Args, Payload, Event
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn socket_ref_is_the_same_socket_in_connect_event_and_disconnect_handlers() {
    let (tx, mut rx) = channel::<(&'static str, SocketRef)>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let _ = tx.send(("connect", socket.clone()));
        let on_event = tx.clone();
        socket.on("hi", move |socket: SocketRef| {
            let _ = on_event.send(("event", socket));
        });
        let on_disconnect = tx.clone();
        socket.on_disconnect(move |socket: SocketRef| {
            let _ = on_disconnect.send(("disconnect", socket));
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    let id = client.join("/", None).await;
    let (kind, connected) = recv(&mut rx).await;
    assert_eq!(kind, "connect");
    assert_eq!(connected.id().as_str(), id);
    assert_eq!(connected.ns(), "/");
    assert!(connected.connected());

    client.send(r#"2["hi"]"#).await;
    let (kind, in_event) = recv(&mut rx).await;
    assert_eq!(kind, "event");
    assert_eq!(in_event, connected, "the event handler got another socket");

    client.send("1").await;
    let (kind, in_disconnect) = recv(&mut rx).await;
    assert_eq!(kind, "disconnect");
    assert_eq!(in_disconnect, connected);
    assert!(!in_disconnect.connected());
}

#[derive(Debug, PartialEq, Deserialize)]
struct Message {
    text: String,
    n: u32,
}

#[tokio::test]
async fn data_is_the_first_argument_of_an_event() {
    let (tx, mut rx) = channel::<Message>();
    let (addr, _io) = event_server(Io::builder(), "msg", move |Data(message): Data<Message>| {
        let _ = tx.send(message);
    })
    .await;
    let mut client = joined(addr).await;
    client
        .send(r#"2["msg",{"text":"hi","n":3},"ignored",4]"#)
        .await;
    let expected = Message {
        text: "hi".into(),
        n: 3,
    };
    assert_eq!(recv(&mut rx).await, expected);
}

#[tokio::test]
async fn data_in_a_connect_handler_is_the_auth_payload() {
    let (tx, mut rx) = channel::<Value>();
    let (addr, _io) = server(Io::builder(), move |io| {
        let typed = tx.clone();
        io.ns("/typed", move |Data(auth): Data<Auth>| {
            let _ = typed.send(json!({ "typed": auth }));
        });
        io.ns("/raw", move |Data(auth): Data<Value>, socket: SocketRef| {
            // `SocketRef::auth` holds the same payload.
            let same: Value = socket.auth().get(0).unwrap();
            assert_eq!(same, auth);
            let _ = tx.send(json!({ "raw": auth }));
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/typed", Some(r#"{"token":"abc"}"#)).await;
    assert_eq!(recv(&mut rx).await, json!({ "typed": { "token": "abc" } }));
    // A client that sends no auth gets an empty object.
    client.join("/raw", None).await;
    assert_eq!(recv(&mut rx).await, json!({ "raw": {} }));
}

#[tokio::test]
async fn a_connect_handler_whose_data_does_not_deserialize_is_skipped_but_the_socket_admitted() {
    let (tx, mut rx) = channel::<Auth>();
    let (addr, io) = server(Io::builder(), move |io| {
        io.ns("/typed", move |Data(auth): Data<Auth>| {
            let _ = tx.send(auth);
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    // Documented: an extractor failure in a connect handler is logged (refusing is the job
    // of a connect middleware).
    client.join("/typed", Some(r#"{"wrong":1}"#)).await;
    assert_no_recv(&mut rx).await;
    assert_eq!(io.of("/typed").unwrap().len(), 1);
}

#[tokio::test]
async fn try_data_hands_the_deserialization_error_to_the_handler() {
    let (tx, mut rx) = channel::<Result<u32, String>>();
    let (addr, _io) = server(Io::builder(), move |io| {
        let on_connect = tx.clone();
        io.ns(
            "/",
            move |socket: SocketRef, TryData(auth): TryData<Auth>| {
                let _ = on_connect.send(auth.map(|_| 0).map_err(|e| e.to_string()));
                let tx = tx.clone();
                socket.on("n", move |TryData(n): TryData<u32>| {
                    let _ = tx.send(n.map_err(|e| e.to_string()));
                });
            },
        );
    })
    .await;
    let mut client = joined(addr).await;
    let auth = recv(&mut rx).await.unwrap_err();
    assert!(auth.starts_with("invalid payload:"), "{auth}");
    client.send(r#"21["n","seven"]"#).await;
    let error = recv(&mut rx).await.unwrap_err();
    assert!(error.contains("expected u32"), "{error}");
    // The handler took the error: the client's ack is not answered by the server for it.
    client.assert_quiet().await;
    client.send(r#"2["n",7]"#).await;
    assert_eq!(recv(&mut rx).await, Ok(7));
}

#[tokio::test]
async fn args_extracts_every_argument_as_one_typed_sequence() {
    let (tx, mut rx) = channel::<Value>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let pair = tx.clone();
        socket.on("pair", move |Args((name, n)): Args<(String, u32)>| {
            let _ = pair.send(json!([name, n]));
        });
        let every = tx.clone();
        socket.on("all", move |Args(all): Args<Vec<Value>>| {
            let _ = every.send(Value::Array(all));
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["pair","a",2]"#).await;
    assert_eq!(recv(&mut rx).await, json!(["a", 2]));
    client.send(r#"2["all",1,"two",{"three":[3]},null]"#).await;
    assert_eq!(
        recv(&mut rx).await,
        json!([1, "two", { "three": [3] }, null])
    );
    client.send(r#"2["all"]"#).await;
    assert_eq!(recv(&mut rx).await, json!([]));
    // Too few arguments for the tuple: refused, with the error in the ack.
    client.send(r#"25["pair","a"]"#).await;
    let answer = client.text().await;
    assert!(
        answer.starts_with(r#"35[{"error":"invalid payload: "#),
        "{answer}"
    );
    assert_no_recv(&mut rx).await;
}

#[tokio::test]
async fn payload_gets_deserializes_and_serializes_arguments() {
    let (tx, mut rx) = channel::<Value>();
    let (addr, _io) = event_server(Io::builder(), "p", move |payload: Payload| {
        let all: (String, u32, Value) = payload.deserialize().unwrap();
        let _ = tx.send(json!({
            "len": payload.len(),
            "empty": payload.is_empty(),
            "first": payload.get::<String>(0).unwrap(),
            "absent": payload.get::<Option<u32>>(7).unwrap(),
            "wrong_type": payload.get::<u32>(0).is_err(),
            "all": all,
            "arg2": serde_json::to_value(payload.arg(2).unwrap()).unwrap(),
            "arg3": payload.arg(3).is_none(),
            "whole": serde_json::to_value(&payload).unwrap(),
        }));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["p","a",2,{"k":[1,null]}]"#).await;
    assert_eq!(
        recv(&mut rx).await,
        json!({
            "len": 3,
            "empty": false,
            "first": "a",
            "absent": null,
            "wrong_type": true,
            "all": ["a", 2, { "k": [1, null] }],
            "arg2": { "k": [1, null] },
            "arg3": true,
            "whole": ["a", 2, { "k": [1, null] }],
        })
    );
}

#[tokio::test]
async fn payload_of_an_event_without_arguments_is_empty() {
    let (tx, mut rx) = channel::<(usize, bool)>();
    let (addr, _io) = event_server(Io::builder(), "none", move |payload: Payload| {
        let _ = tx.send((payload.len(), payload.is_empty()));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["none"]"#).await;
    assert_eq!(recv(&mut rx).await, (0, true));
}

#[tokio::test]
async fn payload_emitted_again_keeps_every_argument_verbatim() {
    let (addr, _io) = event_server(
        Io::builder(),
        "echo",
        |socket: SocketRef, payload: Payload| socket.emit_args("echo", &payload),
    )
    .await;
    let mut client = joined(addr).await;
    let packet = r#"2["echo",1,"two",{"three":[3.5,true]},null,[]]"#;
    client.send(packet).await;
    assert_eq!(client.text().await, packet);
}

#[tokio::test]
async fn payload_emitted_again_keeps_binary_arguments() {
    let (tx, mut rx) = channel::<(Bytes, String)>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let tx = tx.clone();
        socket.on("echo", move |socket: SocketRef, payload: Payload| {
            #[derive(Deserialize)]
            struct Nested {
                b: Bytes,
            }
            let first: Bytes = payload.get(0).unwrap();
            let nested: Nested = payload.get(2).unwrap();
            let text: String = payload.get(1).unwrap();
            assert_eq!(nested.b, Bytes::from_static(&[4, 5]));
            let _ = tx.send((first, text));
            socket.emit_args("echo", &payload)
        });
        socket.on("ack", |payload: Payload, ack: AckSender| {
            ack.send_args(&payload)
        });
    })
    .await;
    let mut client = joined(addr).await;
    let header =
        r#"["echo",{"_placeholder":true,"num":0},"txt",{"b":{"_placeholder":true,"num":1}}]"#;
    client.send(&format!("52-{header}")).await;
    client.send_binary(&[1, 2, 3]).await;
    client.send_binary(&[4, 5]).await;
    assert_eq!(
        recv(&mut rx).await,
        (Bytes::from_static(&[1, 2, 3]), "txt".to_owned())
    );

    let text = client.text().await;
    let body = text
        .strip_prefix("52-")
        .expect("a binary event with 2 attachments");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        serde_json::from_str::<Value>(header).unwrap()
    );
    assert_eq!(client.binary().await, Bytes::from_static(&[1, 2, 3]));
    assert_eq!(client.binary().await, Bytes::from_static(&[4, 5]));

    // The same payload as an ack.
    let args = r#"[{"_placeholder":true,"num":0},"txt"]"#;
    client.send(&format!(r#"51-9["ack",{}"#, &args[1..])).await;
    client.send_binary(&[9, 9]).await;
    let text = client.text().await;
    let body = text
        .strip_prefix("61-9")
        .expect("a binary ack with 1 attachment");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        serde_json::from_str::<Value>(args).unwrap()
    );
    assert_eq!(client.binary().await, Bytes::from_static(&[9, 9]));
}

#[tokio::test]
async fn event_extractor_names_the_event_of_a_shared_handler() {
    let (tx, mut rx) = channel::<String>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let tx = tx.clone();
        let handler = move |Event(name): Event| {
            let _ = tx.send(name);
        };
        socket.on("a", handler.clone());
        socket.on("b", handler);
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["b"]"#).await;
    client.send(r#"2["a",1]"#).await;
    assert_eq!(recv(&mut rx).await, "b");
    assert_eq!(recv(&mut rx).await, "a");
}

#[tokio::test]
async fn option_of_an_extractor_is_none_instead_of_a_refusal() {
    let (tx, mut rx) = channel::<(Option<Data<u32>>, Option<Extension<User>>)>();
    let (addr, _io) = event_server(
        Io::builder(),
        "maybe",
        move |data: Option<Data<u32>>, user: Option<Extension<User>>| {
            let _ = tx.send((data, user));
        },
    )
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["maybe","x"]"#).await;
    let (data, user) = recv(&mut rx).await;
    assert_eq!(data, None);
    assert!(user.is_none());
    client.send(r#"2["maybe",3]"#).await;
    assert_eq!(recv(&mut rx).await.0, Some(Data(3)));
    // The handler ran (no refusal), and it did not answer the ack.
    client.assert_quiet().await;
}

// ---------------------------------------------------------------------------------------
// AckSender
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ack_sender_answers_with_one_argument() {
    let (addr, _io) = event_server(
        Io::builder(),
        "q",
        |Data(x): Data<String>, ack: AckSender| ack.send(&format!("{x}!")),
    )
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["q","x"]"#).await;
    assert_eq!(client.text().await, r#"31["x!"]"#);
    // Ack id 0 is a valid id, and ids are echoed as sent.
    client.send(r#"20["q","y"]"#).await;
    assert_eq!(client.text().await, r#"30["y!"]"#);
    client.send(r#"2987654321["q","z"]"#).await;
    assert_eq!(client.text().await, r#"3987654321["z!"]"#);
}

#[tokio::test]
async fn ack_sender_send_args_answers_with_several_arguments() {
    let (addr, _io) = server(Io::builder(), |io| {
        io.ns("/", |socket: SocketRef| {
            socket.on("two", |ack: AckSender| ack.send_args(&(1, "two", [3])));
            socket.on("none", |ack: AckSender| ack.send_args(&()));
        });
        io.ns("/chat", |socket: SocketRef| {
            socket.on("two", |ack: AckSender| ack.send_args(&(1, "two")));
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"22["two"]"#).await;
    assert_eq!(client.text().await, r#"32[1,"two",[3]]"#);
    client.send(r#"23["none"]"#).await;
    assert_eq!(client.text().await, "33[]");
    client.join("/chat", None).await;
    client.send(r#"2/chat,4["two"]"#).await;
    assert_eq!(client.text().await, r#"3/chat,4[1,"two"]"#);
}

#[tokio::test]
async fn ack_sender_without_an_ack_id_is_not_requested_and_sending_is_a_no_op() {
    let (tx, mut rx) = channel::<(bool, bool)>();
    let (addr, _io) = event_server(Io::builder(), "q", move |ack: AckSender| {
        let requested = ack.is_requested();
        let sent = ack.send("answer").is_ok();
        let _ = tx.send((requested, sent));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["q"]"#).await;
    assert_eq!(recv(&mut rx).await, (false, true));
    client.assert_quiet().await;
    client.send(r#"27["q"]"#).await;
    assert_eq!(recv(&mut rx).await, (true, true));
    assert_eq!(client.text().await, r#"37["answer"]"#);
}

#[tokio::test]
async fn ack_sender_can_answer_after_an_await() {
    let (addr, _io) = event_server(Io::builder(), "later", async |ack: AckSender| {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ack.send("done")
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"23["later"]"#).await;
    assert_eq!(client.text().await, r#"33["done"]"#);
}

// ---------------------------------------------------------------------------------------
// State, Extension
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Counter(Arc<AtomicUsize>);

#[tokio::test]
async fn state_reaches_connect_event_and_disconnect_handlers() {
    let (tx, mut rx) = channel::<String>();
    let counter = Counter(Arc::new(AtomicUsize::new(0)));
    let builder = Io::builder()
        .with_state(counter.clone())
        .with_state(String::from("config"))
        .with_state(tx);
    let (addr, io) = server(builder, |io| {
        io.ns(
            "/",
            |socket: SocketRef, State(name): State<String>, State(tx): State<Tx<String>>| {
                let _ = tx.send(format!("connect {name}"));
                socket.on(
                    "count",
                    |State(Counter(n)): State<Counter>, ack: AckSender| {
                        ack.send(&(n.fetch_add(1, Ordering::SeqCst) + 1))
                    },
                );
                socket.on_disconnect(|State(name): State<String>, State(tx): State<Tx<String>>| {
                    let _ = tx.send(format!("disconnect {name}"));
                });
            },
        );
    })
    .await;
    assert_eq!(io.state::<String>().as_deref(), Some("config"));
    assert!(io.state::<u8>().is_none());

    let mut client = joined(addr).await;
    assert_eq!(recv(&mut rx).await, "connect config");
    client.send(r#"21["count"]"#).await;
    assert_eq!(client.text().await, "31[1]");
    client.send(r#"22["count"]"#).await;
    assert_eq!(client.text().await, "32[2]");
    assert_eq!(counter.0.load(Ordering::SeqCst), 2, "the state is shared");
    client.send("1").await;
    assert_eq!(recv(&mut rx).await, "disconnect config");
}

#[tokio::test]
async fn missing_state_refuses_the_event() {
    let (tx, mut rx) = channel::<u64>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let tx = tx.clone();
        socket.on("need", move |State(n): State<u64>| {
            let _ = tx.send(n);
        });
        socket.on("ok", |ack: AckSender| ack.send("ok"));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["need"]"#).await;
    assert_eq!(
        client.text().await,
        r#"31[{"error":"no state of type u64 was given to the server"}]"#
    );
    client.send(r#"2["need"]"#).await;
    assert_no_recv(&mut rx).await;
    client.send(r#"22["ok"]"#).await;
    assert_eq!(client.text().await, r#"32["ok"]"#);
}

#[tokio::test]
async fn extension_reads_the_socket_data_stored_with_insert() {
    let (tx, mut rx) = channel::<String>();
    let (addr, _io) = root_server(Io::builder().with_state(tx), |socket| {
        assert_eq!(socket.insert(User("ann".into())), None);
        assert_eq!(socket.get::<User>(), Some(User("ann".into())));
        // Inserting again replaces the value and hands back the old one.
        assert_eq!(socket.insert(User("bob".into())), Some(User("ann".into())));
        socket.insert(Role("admin"));
        socket.on(
            "whoami",
            |Extension(User(name)): Extension<User>, ack: AckSender| ack.send(&name),
        );
        socket.on("logout", |socket: SocketRef, ack: AckSender| {
            ack.send(&socket.remove::<User>().map(|u| u.0))
        });
        socket.on_disconnect(
            |Extension(Role(role)): Extension<Role>, State(tx): State<Tx<String>>| {
                let _ = tx.send(role.to_owned());
            },
        );
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["whoami"]"#).await;
    assert_eq!(client.text().await, r#"31["bob"]"#);
    client.send(r#"22["logout"]"#).await;
    assert_eq!(client.text().await, r#"32["bob"]"#);
    client.send(r#"23["logout"]"#).await;
    assert_eq!(client.text().await, "33[null]");
    client.send(r#"24["whoami"]"#).await;
    assert_eq!(
        client.text().await,
        r#"34[{"error":"the socket holds no data of type handlers::User"}]"#
    );
    client.send("1").await;
    assert_eq!(recv(&mut rx).await, "admin");
}

#[tokio::test]
async fn extension_in_a_connect_handler_reads_what_a_middleware_stored() {
    let (tx, mut rx) = channel::<String>();
    let (addr, _io) = server(Io::builder(), move |io| {
        use ferrio::ConnectHandler as _;
        let handler = move |Extension(User(name)): Extension<User>| {
            let _ = tx.send(name);
        };
        io.ns(
            "/",
            handler.with(|socket: SocketRef, Data(auth): Data<Auth>| {
                socket.insert(User(auth.token));
                Ok::<(), &str>(())
            }),
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/", Some(r#"{"token":"carol"}"#)).await;
    assert_eq!(recv(&mut rx).await, "carol");
}

#[tokio::test]
async fn disconnect_handler_gets_the_reason() {
    let (tx, mut rx) = channel::<(String, DisconnectReason)>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let tx = tx.clone();
        socket.on_disconnect(move |socket: SocketRef, reason: DisconnectReason| {
            let _ = tx.send((socket.id().to_string(), reason));
        });
    })
    .await;
    let mut client = Client::connect(addr).await;
    let id = client.join("/", None).await;
    client.send("1").await;
    assert_eq!(
        recv(&mut rx).await,
        (id, DisconnectReason::ClientNamespaceDisconnect)
    );
}

// ---------------------------------------------------------------------------------------
// The shapes of a handler
// ---------------------------------------------------------------------------------------

async fn async_fn_event(State(tx): State<Tx<String>>, Event(e): Event) {
    tokio::task::yield_now().await;
    let _ = tx.send(format!("async fn {e}"));
}

fn plain_fn_event(State(tx): State<Tx<String>>, Event(e): Event) {
    let _ = tx.send(format!("plain fn {e}"));
}

async fn async_fn_connect(socket: SocketRef, State(tx): State<Tx<String>>) {
    tokio::task::yield_now().await;
    let _ = tx.send(format!("async fn connect {}", socket.ns()));
}

fn plain_fn_connect(socket: SocketRef, State(tx): State<Tx<String>>) {
    let _ = tx.send(format!("plain fn connect {}", socket.ns()));
}

async fn async_fn_disconnect(socket: SocketRef, State(tx): State<Tx<String>>) {
    tokio::task::yield_now().await;
    let _ = tx.send(format!("async fn disconnect {}", socket.ns()));
}

fn plain_fn_disconnect(socket: SocketRef, State(tx): State<Tx<String>>) {
    let _ = tx.send(format!("plain fn disconnect {}", socket.ns()));
}

#[tokio::test]
async fn event_handlers_may_be_async_fns_async_closures_closures_or_plain_fns() {
    let (tx, mut rx) = channel::<String>();
    let (addr, _io) = root_server(Io::builder().with_state(tx), |socket| {
        socket.on("async_fn", async_fn_event);
        socket.on("plain_fn", plain_fn_event);
        socket.on(
            "async_closure",
            async |State(tx): State<Tx<String>>, Event(e): Event| {
                tokio::task::yield_now().await;
                let _ = tx.send(format!("async closure {e}"));
            },
        );
        socket.on(
            "closure",
            |State(tx): State<Tx<String>>, Event(e): Event| {
                let _ = tx.send(format!("closure {e}"));
            },
        );
        socket.on("no_args", || {});
    })
    .await;
    let mut client = joined(addr).await;
    for event in ["async_fn", "plain_fn", "async_closure", "closure"] {
        client.send(&format!(r#"2["{event}"]"#)).await;
        let got = recv(&mut rx).await;
        assert_eq!(got, format!("{} {event}", event.replace('_', " ")));
    }
    client.send(r#"2["no_args"]"#).await;
    assert_no_recv(&mut rx).await;
}

#[tokio::test]
async fn connect_and_disconnect_handlers_may_be_async_fns_async_closures_closures_or_plain_fns() {
    let (tx, mut rx) = channel::<String>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        io.ns("/async_fn", |socket: SocketRef| {
            socket.on_disconnect(async_fn_disconnect);
        });
        io.ns("/plain_fn", |socket: SocketRef| {
            socket.on_disconnect(plain_fn_disconnect);
        });
        io.ns("/async_closure", |socket: SocketRef| {
            socket.on_disconnect(async |socket: SocketRef, State(tx): State<Tx<String>>| {
                tokio::task::yield_now().await;
                let _ = tx.send(format!("async closure disconnect {}", socket.ns()));
            });
        });
        io.ns("/closure", |socket: SocketRef| {
            socket.on_disconnect(|socket: SocketRef, State(tx): State<Tx<String>>| {
                let _ = tx.send(format!("closure disconnect {}", socket.ns()));
            });
        });
        io.ns("/c_async_fn", async_fn_connect);
        io.ns("/c_plain_fn", plain_fn_connect);
        io.ns(
            "/c_async_closure",
            async |socket: SocketRef, State(tx): State<Tx<String>>| {
                tokio::task::yield_now().await;
                let _ = tx.send(format!("async closure connect {}", socket.ns()));
            },
        );
        io.ns(
            "/c_closure",
            |socket: SocketRef, State(tx): State<Tx<String>>| {
                let _ = tx.send(format!("closure connect {}", socket.ns()));
            },
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    for kind in ["async_fn", "plain_fn", "async_closure", "closure"] {
        let label = kind.replace('_', " ");
        client.join(&format!("/c_{kind}"), None).await;
        assert_eq!(recv(&mut rx).await, format!("{label} connect /c_{kind}"));
        client.join(&format!("/{kind}"), None).await;
        client.send(&format!("1/{kind},")).await;
        assert_eq!(recv(&mut rx).await, format!("{label} disconnect /{kind}"));
    }
}

#[tokio::test]
async fn handlers_take_up_to_eight_extractors() {
    let (tx, mut rx) = channel::<Value>();
    let (addr, _io) = server(Io::builder().with_state(tx), |io| {
        io.ns(
            "/",
            |socket: SocketRef,
             Data(auth): Data<Auth>,
             TryData(again): TryData<Auth>,
             State(tx): State<Tx<Value>>| {
                assert_eq!(again.unwrap(), auth);
                socket.insert(User(auth.token));
                let _ = tx.send(json!("connected"));
                socket.on(
                    "all",
                    |socket: SocketRef,
                     Data(first): Data<String>,
                     Event(event): Event,
                     ack: AckSender,
                     State(tx): State<Tx<Value>>,
                     Extension(User(user)): Extension<User>,
                     payload: Payload,
                     Args((a, b)): Args<(String, u32)>| {
                        let _ = tx.send(json!({
                            "ns": socket.ns(),
                            "first": first,
                            "event": event,
                            "user": user,
                            "len": payload.len(),
                            "args": [a, b],
                        }));
                        ack.send("ok")
                    },
                );
                socket.on_disconnect(
                    |socket: SocketRef,
                     reason: DisconnectReason,
                     State(tx): State<Tx<Value>>,
                     Extension(User(user)): Extension<User>| {
                        let _ = tx.send(json!([socket.ns(), reason.as_str(), user]));
                    },
                );
            },
        );
    })
    .await;
    let mut client = Client::connect(addr).await;
    client.join("/", Some(r#"{"token":"dan"}"#)).await;
    assert_eq!(recv(&mut rx).await, json!("connected"));
    client.send(r#"21["all","x",5]"#).await;
    assert_eq!(client.text().await, r#"31["ok"]"#);
    assert_eq!(
        recv(&mut rx).await,
        json!({ "ns": "/", "first": "x", "event": "all", "user": "dan", "len": 2, "args": ["x", 5] })
    );
    client.send("1").await;
    assert_eq!(
        recv(&mut rx).await,
        json!(["/", "client namespace disconnect", "dan"])
    );
}

// ---------------------------------------------------------------------------------------
// Refusals and errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn data_that_does_not_deserialize_answers_the_ack_with_an_error() {
    let (tx, mut rx) = channel::<u32>();
    let (addr, _io) = event_server(
        Io::builder(),
        "n",
        move |Data(n): Data<u32>, ack: AckSender| {
            let _ = tx.send(n);
            ack.send("ok")
        },
    )
    .await;
    let mut client = joined(addr).await;
    client.send(r#"213["n","x"]"#).await;
    assert_eq!(
        client.text().await,
        r#"313[{"error":"invalid payload: invalid type: string \"x\", expected u32 at line 1 column 3"}]"#
    );
    // No argument at all reads as null.
    client.send(r#"214["n"]"#).await;
    assert_eq!(
        client.text().await,
        r#"314[{"error":"invalid payload: invalid type: null, expected u32 at line 1 column 4"}]"#
    );
    assert_no_recv(&mut rx).await;
    client.send(r#"215["n",4]"#).await;
    assert_eq!(client.text().await, r#"315["ok"]"#);
    assert_eq!(recv(&mut rx).await, 4);
}

#[tokio::test]
async fn a_refused_event_answers_the_ack_whatever_the_extractor_order() {
    let (addr, _io) = event_server(
        Io::builder(),
        "ack_first",
        |ack: AckSender, Data(n): Data<u32>| ack.send(&n),
    )
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["ack_first","x"]"#).await;
    assert_eq!(
        client.text().await,
        r#"31[{"error":"invalid payload: invalid type: string \"x\", expected u32 at line 1 column 3"}]"#
    );
}

#[tokio::test]
async fn data_that_does_not_deserialize_without_an_ack_skips_the_event() {
    let (tx, mut rx) = channel::<u32>();
    let (addr, _io) = event_server(Io::builder(), "n", move |Data(n): Data<u32>| {
        let _ = tx.send(n);
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"2["n","x"]"#).await;
    client.send(r#"2["n",{"k":1}]"#).await;
    client.assert_quiet().await;
    assert_no_recv(&mut rx).await;
    client.send(r#"2["n",8]"#).await;
    assert_eq!(recv(&mut rx).await, 8);
}

#[tokio::test]
async fn handlers_returning_err_do_not_break_the_socket() {
    let (tx, mut rx) = channel::<&'static str>();
    let (addr, _io) = root_server(Io::builder(), move |socket| {
        let sync_tx = tx.clone();
        socket.on("sync_err", move || {
            let _ = sync_tx.send("sync");
            Err::<(), _>("sync failure")
        });
        let async_tx = tx.clone();
        socket.on("async_err", move || {
            let tx = async_tx.clone();
            async move {
                tokio::task::yield_now().await;
                let _ = tx.send("async");
                Err::<(), _>(std::io::Error::other("async failure"))
            }
        });
        socket.on("ok", |ack: AckSender| ack.send("still here"));
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["sync_err"]"#).await;
    assert_eq!(recv(&mut rx).await, "sync");
    client.send(r#"22["async_err"]"#).await;
    assert_eq!(recv(&mut rx).await, "async");
    // The error is logged, not sent: the client gets no ack and no disconnect.
    client.assert_quiet().await;
    client.send(r#"23["ok"]"#).await;
    assert_eq!(client.text().await, r#"33["still here"]"#);
}

#[tokio::test]
async fn events_without_a_handler_are_ignored() {
    let (addr, _io) = event_server(Io::builder(), "ok", |ack: AckSender| ack.send("ok")).await;
    let mut client = joined(addr).await;
    client.send(r#"21["nobody",1]"#).await;
    client.assert_quiet().await;
    client.send(r#"22["ok"]"#).await;
    assert_eq!(client.text().await, r#"32["ok"]"#);
}

#[tokio::test]
async fn on_replaces_the_handler_of_an_event_and_off_removes_it() {
    let (addr, _io) = root_server(Io::builder(), |socket| {
        socket.on("q", |ack: AckSender| ack.send("first"));
        socket.on("q", |ack: AckSender| ack.send("second"));
        socket.on("off", |socket: SocketRef, ack: AckSender| {
            socket.off("q");
            ack.send("removed")
        });
    })
    .await;
    let mut client = joined(addr).await;
    client.send(r#"21["q"]"#).await;
    assert_eq!(client.text().await, r#"31["second"]"#);
    client.send(r#"22["off"]"#).await;
    assert_eq!(client.text().await, r#"32["removed"]"#);
    client.send(r#"23["q"]"#).await;
    client.assert_quiet().await;
}

/// Handlers are found by name among many of every length, some of the same length, whatever
/// the order they were registered in; a name that is a prefix of another is its own event.
#[tokio::test]
async fn each_event_reaches_its_own_handler_among_many() {
    const NAMES: [&str; 9] = ["zz", "a", "abc", "ab", "b", "echo", "échos", "ech", "zzzz"];
    let (addr, _io) = root_server(Io::builder(), |socket| {
        for name in NAMES {
            socket.on(name, move |ack: AckSender| ack.send(name));
        }
        socket.off("b");
    })
    .await;
    let mut client = joined(addr).await;
    for (id, name) in NAMES.iter().enumerate() {
        client
            .send(&format!("2{id}[{}]", serde_json::json!(name)))
            .await;
        if *name == "b" {
            client.assert_quiet().await;
        } else {
            assert_eq!(
                client.text().await,
                format!("3{id}[{}]", serde_json::json!(name))
            );
        }
    }
    client.send(r#"29["abcd"]"#).await;
    client.assert_quiet().await;
}

// ---------------------------------------------------------------------------------------
// Concurrency and order
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_handler_that_awaits_blocks_neither_other_sockets_nor_its_own_next_events() {
    let gate = Arc::new(Notify::new());
    let (addr, _io) = root_server(Io::builder().with_state(gate.clone()), |socket| {
        socket.on(
            "slow",
            async |State(gate): State<Arc<Notify>>, ack: AckSender| {
                gate.notified().await;
                ack.send("slow done")
            },
        );
        socket.on("fast", |ack: AckSender| ack.send("fast"));
    })
    .await;
    let mut a = joined(addr).await;
    let mut b = joined(addr).await;
    a.send(r#"21["slow"]"#).await;
    b.send(r#"21["fast"]"#).await;
    assert_eq!(b.text().await, r#"31["fast"]"#);
    a.send(r#"22["fast"]"#).await;
    assert_eq!(a.text().await, r#"32["fast"]"#);
    gate.notify_one();
    assert_eq!(a.text().await, r#"31["slow done"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_handlers_emit_before_their_first_await_leaves_in_packet_order() {
    const N: u64 = 200;
    let (addr, _io) = event_server(
        Io::builder(),
        "n",
        async |socket: SocketRef, Data(n): Data<u64>| {
            let _ = socket.emit("first", &n);
            tokio::time::sleep(Duration::from_millis(n % 3)).await;
            let _ = socket.emit("later", &n);
        },
    )
    .await;
    let mut client = joined(addr).await;
    for n in 0..N {
        client.send(&format!(r#"2["n",{n}]"#)).await;
    }
    let mut firsts = Vec::new();
    let mut laters = 0;
    while firsts.len() < N as usize || laters < N {
        let text = client.text().await;
        let packet: Value = serde_json::from_str(&text[1..]).unwrap();
        match packet[0].as_str() {
            Some("first") => firsts.push(packet[1].as_u64().unwrap()),
            Some("later") => laters += 1,
            _ => panic!("unexpected packet {text}"),
        }
    }
    assert_eq!(firsts, (0..N).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// Emitting to the socket's own client
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct Notice<'a> {
    text: &'a str,
    urgent: bool,
}

#[tokio::test]
async fn socket_emit_and_emit_args_write_the_event_packet() {
    let (tx, mut rx) = channel::<SocketRef>();
    let (addr, _io) = server(Io::builder(), move |io| {
        io.ns("/", move |socket: SocketRef| {
            let _ = tx.send(socket);
        });
        io.ns("/chat", |socket: SocketRef| {
            let _ = socket.emit("welcome", "to chat");
        });
    })
    .await;
    let mut client = joined(addr).await;
    let socket = recv(&mut rx).await;

    socket
        .emit(
            "notice",
            &Notice {
                text: "hi",
                urgent: true,
            },
        )
        .unwrap();
    assert_eq!(
        client.text().await,
        r#"2["notice",{"text":"hi","urgent":true}]"#
    );
    socket.emit_args("many", &(1, "two", [3])).unwrap();
    assert_eq!(client.text().await, r#"2["many",1,"two",[3]]"#);
    socket.emit_args("vec", &vec![1, 2]).unwrap();
    assert_eq!(client.text().await, r#"2["vec",1,2]"#);
    socket.emit_args("none", &()).unwrap();
    assert_eq!(client.text().await, r#"2["none"]"#);
    let built = Payload::from_args(&("a", 1)).unwrap();
    socket.emit_args("built", &built).unwrap();
    assert_eq!(client.text().await, r#"2["built","a",1]"#);

    client.join("/chat", None).await;
    assert_eq!(client.text().await, r#"2/chat,["welcome","to chat"]"#);
}

#[tokio::test]
async fn socket_emit_of_bytes_sends_a_binary_event() {
    let (addr, _io, mut rx) = socket_server(Io::builder(), |_| {}).await;
    let mut client = joined(addr).await;
    let socket = recv(&mut rx).await;
    socket
        .emit_args("file", &("name.bin", Bytes::from_static(&[0, 1, 255])))
        .unwrap();
    assert_eq!(
        client.text().await,
        r#"51-["file","name.bin",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(client.binary().await, Bytes::from_static(&[0, 1, 255]));
}

#[tokio::test]
async fn emitting_to_a_disconnected_socket_fails_with_closed() {
    let (addr, _io, mut rx) = socket_server(Io::builder(), |_| {}).await;
    let mut client = joined(addr).await;
    let socket = recv(&mut rx).await;
    client.close().await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while socket.connected() {
        assert!(tokio::time::Instant::now() < deadline, "never disconnected");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(socket.emit("late", &1), Err(EmitError::Closed)));
}

#[tokio::test]
async fn emitting_after_leaving_the_namespace_fails_with_closed() {
    let (addr, _io, mut rx) = socket_server(Io::builder(), |_| {}).await;
    let mut client = joined(addr).await;
    let socket = recv(&mut rx).await;
    client.send("1").await;
    common::eventually("the socket left", || !socket.connected()).await;
    assert!(matches!(
        socket.emit_with_ack("late", &1).await,
        Err(ferrio::AckError::Emit(EmitError::Closed))
    ));
    assert!(matches!(socket.emit("late", &1), Err(EmitError::Closed)));
    assert!(matches!(
        socket.emit_args("late", &(1, 2)),
        Err(EmitError::Closed)
    ));
    client.assert_quiet().await;
}

#[tokio::test]
async fn binary_event_from_the_client_reaches_data_as_bytes() {
    let (tx, mut rx) = channel::<(String, Bytes)>();
    let (addr, _io) = event_server(
        Io::builder(),
        "upload",
        move |Args((name, data)): Args<(String, Bytes)>| {
            let _ = tx.send((name, data));
        },
    )
    .await;
    let mut client = joined(addr).await;
    client
        .send(r#"51-["upload","f",{"_placeholder":true,"num":0}]"#)
        .await;
    client.send_binary(&[7; 300]).await;
    assert_eq!(
        recv(&mut rx).await,
        ("f".to_owned(), Bytes::from(vec![7; 300]))
    );
}

#[tokio::test]
async fn reserved_event_names_are_refused_before_they_reach_a_client() {
    let (addr, io, mut sockets) = common::socket_server(Io::builder(), |_| {}).await;
    let (mut client, socket) = common::join_root(addr, &mut sockets).await;
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        assert!(
            matches!(socket.emit(name, &1), Err(ferrio::EmitError::ReservedEvent(n)) if n == name),
            "{name}"
        );
        assert!(matches!(
            io.emit(name, &1),
            Err(ferrio::EmitError::ReservedEvent(_))
        ));
        let ack = socket.emit_with_ack(name, &1).await;
        assert!(matches!(
            ack,
            Err(ferrio::AckError::Emit(ferrio::EmitError::ReservedEvent(_)))
        ));
    }
    client.assert_quiet().await;
    // An ordinary name still goes through on the same connection.
    socket.emit("error", &1).unwrap();
    assert_eq!(client.text().await, r#"2["error",1]"#);
}
