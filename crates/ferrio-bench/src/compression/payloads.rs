//! The payloads both halves of the compression study send: chat messages of about 100 bytes
//! and a 64 KB JSON document, made up from a fixed seed so every run sends the same bytes.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const WORDS: &[&str] = &[
    "hello", "meeting", "tomorrow", "at", "the", "office", "lunch", "deploy", "build", "green",
    "red", "review", "please", "thanks", "ok", "see", "you", "later", "bug", "fixed", "release",
    "notes", "coffee", "break", "call", "me", "when", "ready", "done", "ship", "it",
];
const USERS: &[&str] = &[
    "ada", "grace", "linus", "margaret", "ken", "barbara", "dennis",
];
const ROOMS: &[&str] = &["general", "random", "ops", "frontend"];

/// A deterministic source of made-up data.
pub(crate) fn rng() -> StdRng {
    StdRng::seed_from_u64(0x5eed)
}

/// One chat message, about 100 bytes as a Socket.IO event (`42["chat",{...}]`).
pub(crate) fn chat_message(rng: &mut StdRng, n: u64) -> Value {
    let words = rng.random_range(3..7);
    let text: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    json!({
        "id": 1000 + n,
        "room": ROOMS[rng.random_range(0..ROOMS.len())],
        "text": text.join(" "),
        "ts": 1_764_700_000_000u64 + n * 1_337 + rng.random_range(0..1000),
        "user": USERS[rng.random_range(0..USERS.len())],
    })
}

/// A JSON document of at least `bytes` bytes: an array of records as an API would return.
pub(crate) fn document(rng: &mut StdRng, bytes: usize) -> Value {
    let mut records = Vec::new();
    let mut size = 0;
    let mut n = 0u64;
    while size < bytes {
        let tags: Vec<&str> = (0..rng.random_range(1..4))
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        let record = json!({
            "active": rng.random_bool(0.7),
            "email": format!("{}{}@example.com", USERS[rng.random_range(0..USERS.len())], n),
            "id": n,
            "name": format!("{} {}", USERS[rng.random_range(0..USERS.len())], WORDS[rng.random_range(0..WORDS.len())]),
            "score": f64::from(rng.random_range(0..100_000u32)) / 100.0,
            "tags": tags,
        });
        size += record.to_string().len() + 1;
        records.push(record);
        n += 1;
    }
    json!({ "items": records, "total": n })
}

/// A Socket.IO text packet for event `event` with one argument.
pub(crate) fn event_packet(event: &str, arg: &Value) -> String {
    format!("42[\"{event}\",{arg}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_are_about_100_bytes_and_reproducible() {
        let mut a = rng();
        let mut b = rng();
        for n in 0..50 {
            let packet = event_packet("chat", &chat_message(&mut a, n));
            assert!((80..=140).contains(&packet.len()), "{} bytes", packet.len());
            assert_eq!(packet, event_packet("chat", &chat_message(&mut b, n)));
        }
    }

    #[test]
    fn documents_reach_their_size() {
        let doc = document(&mut rng(), 64 * 1024).to_string();
        assert!((64 * 1024..66 * 1024).contains(&doc.len()), "{}", doc.len());
    }
}
