//! Hostile input against the whole service, in memory: random methods, query strings, headers
//! and bodies. Every request gets one of the documented answers, nothing panics, and a healthy
//! session opened before the storm still works after it.

mod common;

use axum::body::Body;
use common::*;
use ferrio_engine::{EngineIoConfig, Message};
use http::Request;
use proptest::prelude::*;

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("4".to_owned()),
        Just("3".to_owned()),
        Just("polling".to_owned()),
        Just("websocket".to_owned()),
        Just("__proto__".to_owned()),
        Just("constructor".to_owned()),
        Just("a".repeat(2048)),
        Just("%00%ff".to_owned()),
        "[A-Za-z0-9_-]{20}",
        "\\PC{0,12}".prop_map(|s| s.replace(['&', '#', '?', ' '], "")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["EIO", "transport", "sid", "t", "b64", ""]);
    prop::collection::vec((key, query_value()), 0..5).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.replace(['&', '#', '?', ' '], "")))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"4hello".to_vec()),
        Just(b"2".to_vec()),
        Just(b"b!!!".to_vec()),
        Just(vec![0xff, 0xfe, 0x1e]),
        Just(vec![b'4'; 5000]),
        prop::collection::vec(any::<u8>(), 0..128),
    ]
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH",
    ])
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        None,
        Some("text/plain;charset=UTF-8"),
        Some("application/octet-stream"),
        Some("text/plain; charset=\u{e9}"),
    ])
}

proptest! {
    // The number of cases comes from PROPTEST_CASES (256 when unset).
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn hostile_requests_get_documented_answers(
        requests in prop::collection::vec((method(), query(), body(), content_type()), 1..12)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let app = echo_app(EngineIoConfig::default().max_payload(4096));
            let healthy = handshake(&app.router).await;

            for (method, query, body, content_type) in requests {
                let mut req = Request::builder()
                    .method(method)
                    .uri(format!("/engine.io/?{query}"));
                if let Some(ct) = content_type {
                    req = req.header("content-type", ct);
                }
                // Strings no HTTP parser would let through never reach the service.
                let Ok(req) = req.body(Body::from(body)) else { continue };
                // A poll for a real session could wait for a ping; bound every request.
                let reply = tokio::time::timeout(std::time::Duration::from_secs(2), send(&app.router, req)).await;
                let Ok(reply) = reply else { continue };
                let status = reply.status.as_u16();
                assert!(
                    matches!(status, 200 | 400 | 403 | 413),
                    "unexpected status {status} for {method} ?{query}: {}", reply.body
                );
                if status == 400 || status == 403 {
                    let json: serde_json::Value = serde_json::from_str(&reply.body)
                        .unwrap_or_else(|_| panic!("error body is not JSON: {}", reply.body));
                    let code = json["code"].as_u64().expect("numeric code");
                    assert!(code <= 5, "code {code}");
                }
            }

            // The session opened before the storm is untouched.
            let sent = post(&app.router, &poll_uri(healthy), "4still here").await;
            assert_eq!(sent.body, "ok");
            let echoed = get(&app.router, &poll_uri(healthy)).await;
            assert_eq!(echoed.body, "4still here");
            let socket = app.engine.get(healthy).expect("healthy session alive");
            assert!(socket.send(Message::from("x")).is_ok());
        });
    }
}
