//! One message read from Redis by the Redis adapter (`ferrio-redis`'s wire format): every
//! decoder either refuses it or decodes it, never panics, and what decodes re-encodes to bytes
//! that decode and re-encode to themselves.
#![no_main]

use ferrio_redis::wire::{BroadcastMessage, Limits, Request, RequestType, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let limits = Limits::default();

    if let Ok(message) = BroadcastMessage::decode(input, &limits) {
        let bytes = message.encode();
        let again = BroadcastMessage::decode(&bytes, &limits).expect("an encoded broadcast decodes");
        assert_eq!(again.encode(), bytes);
    }

    if let Ok(request) = Request::decode(input, &limits) {
        let bytes = request.encode();
        let again = Request::decode(&bytes, &limits).expect("an encoded request decodes");
        assert_eq!(again.encode(), bytes);
        assert_eq!(again.request_type(), request.request_type());
    }

    // Untyped answers are read as the answer to each kind of request that has them.
    for pending in [RequestType::Sockets, RequestType::AllRooms, RequestType::RemoteFetch] {
        match Response::decode(input, &limits, |_| Some(pending)) {
            Ok(response) => {
                let kind = response.request_type();
                let bytes = response.encode();
                let again = Response::decode(&bytes, &limits, |_| Some(kind))
                    .expect("an encoded response decodes");
                assert_eq!(again.encode(), bytes);
                assert_eq!(again.request_id(), response.request_id());
            }
            Err(err) => assert!(!err.to_string().is_empty()),
        }
    }
});
