//! What permessage-deflate (RFC 7692) would cost a server, measured with flate2 (zlib-rs
//! backend) on the payloads of the polling half, without a WebSocket: raw deflate, each
//! message ended by a sync flush whose trailing `00 00 ff ff` is dropped (RFC 7692, 7.2.1),
//! and inflated with those four bytes appended back (7.2.2).
//!
//! With context takeover one compressor and one decompressor live as long as the socket and
//! each message may refer back to the previous ones; without it the history is reset after
//! every message (`reset`, the allocation kept) or the state is made anew per message and
//! dropped after it (nothing kept between messages).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::payloads;
use crate::BoxError;
use std::time::Instant;

/// How the compressor's history is handled between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takeover {
    /// One state per socket, history kept (the default of RFC 7692).
    Kept,
    /// `no_context_takeover`, state kept allocated and reset after each message.
    Reset,
    /// `no_context_takeover`, state allocated per message and freed after it.
    Fresh,
}

impl Takeover {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Takeover::Kept => "context takeover",
            Takeover::Reset => "no takeover, state kept",
            Takeover::Fresh => "no takeover, state per message",
        }
    }
}

/// A compressor for one direction of one socket.
pub(crate) struct Deflater {
    state: Option<Compress>,
    level: Compression,
    window_bits: u8,
    takeover: Takeover,
}

impl Deflater {
    pub(crate) fn new(level: Compression, window_bits: u8, takeover: Takeover) -> Self {
        let state = match takeover {
            Takeover::Fresh => None,
            _ => Some(Compress::new_with_window_bits(level, false, window_bits)),
        };
        Deflater {
            state,
            level,
            window_bits,
            takeover,
        }
    }

    /// One message's payload as permessage-deflate sends it.
    pub(crate) fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) -> Result<(), BoxError> {
        out.clear();
        let level = self.level;
        let window_bits = self.window_bits;
        let state = self
            .state
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, window_bits));
        out.reserve(message.len() / 2 + 64);
        let start_in = state.total_in();
        loop {
            let consumed = (state.total_in() - start_in) as usize;
            let input = message.get(consumed..).unwrap_or_default();
            let before_out = out.len();
            state.compress_vec(input, out, FlushCompress::Sync)?;
            let consumed_now = (state.total_in() - start_in) as usize;
            let done = consumed_now == message.len();
            // A sync flush is complete when the output did not fill the spare capacity.
            if done && out.len() < out.capacity() {
                break;
            }
            if out.len() == before_out && consumed_now == consumed {
                return Err("deflate made no progress".into());
            }
            out.reserve(out.capacity().max(64));
        }
        if !out.ends_with(&[0, 0, 0xff, 0xff]) {
            return Err("a sync flush did not end with 00 00 ff ff".into());
        }
        out.truncate(out.len() - 4);
        match self.takeover {
            Takeover::Kept => {}
            Takeover::Reset => state.reset(),
            Takeover::Fresh => self.state = None,
        }
        Ok(())
    }
}

/// A decompressor for one direction of one socket (its history follows the compressor's).
pub(crate) struct Inflater {
    state: Option<Decompress>,
    window_bits: u8,
    takeover: Takeover,
    input: Vec<u8>,
}

impl Inflater {
    pub(crate) fn new(window_bits: u8, takeover: Takeover) -> Self {
        let state = match takeover {
            Takeover::Fresh => None,
            _ => Some(Decompress::new_with_window_bits(false, window_bits)),
        };
        Inflater {
            state,
            window_bits,
            takeover,
            input: Vec::new(),
        }
    }

    /// A message back from its compressed payload; at most `limit` bytes (a peer could send
    /// a small payload that inflates to gigabytes).
    pub(crate) fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), BoxError> {
        out.clear();
        self.input.clear();
        self.input.extend_from_slice(payload);
        self.input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let window_bits = self.window_bits;
        let state = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, window_bits));
        let start_in = state.total_in();
        loop {
            let consumed = (state.total_in() - start_in) as usize;
            let input = self.input.get(consumed..).unwrap_or_default();
            if out.capacity() == out.len() {
                if out.len() >= limit {
                    return Err(format!("message inflates beyond {limit} bytes").into());
                }
                out.reserve((out.capacity().max(256)).min(limit - out.len()));
            }
            let before_out = out.len();
            let status = state.decompress_vec(input, out, FlushDecompress::Sync)?;
            let consumed_now = (state.total_in() - start_in) as usize;
            let consumed_all = consumed_now == self.input.len();
            if status == Status::StreamEnd {
                // A peer may end a message with a final block: the appended `00 00 ff ff`
                // then stays unread, and the next message starts a new stream.
                state.reset(false);
                break;
            }
            if consumed_all && out.len() < out.capacity() {
                break;
            }
            if out.len() == before_out && consumed_now == consumed {
                return Err("inflate made no progress (truncated or corrupt payload)".into());
            }
        }
        match self.takeover {
            Takeover::Kept => {}
            Takeover::Reset => state.reset(false),
            Takeover::Fresh => self.state = None,
        }
        Ok(())
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub(crate) struct DeflateResult {
    pub(crate) payload: &'static str,
    pub(crate) window_bits: u8,
    pub(crate) takeover: Takeover,
    pub(crate) plain_bytes: f64,
    pub(crate) compressed_bytes: f64,
    pub(crate) compress_ns: f64,
    pub(crate) decompress_ns: f64,
}

/// Memory a socket keeps between messages, measured as RSS growth over many states.
#[derive(Debug, Clone)]
pub(crate) struct MemoryResult {
    pub(crate) window_bits: u8,
    pub(crate) deflate_bytes: f64,
    pub(crate) inflate_bytes: f64,
}

pub(crate) const WINDOW_BITS: [u8; 4] = [15, 12, 10, 9];

/// The messages of each payload kind: distinct chat messages, and distinct 64 KB documents.
fn messages() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut rng = payloads::rng();
    let chat = (0..2000)
        .map(|n| payloads::event_packet("chat", &payloads::chat_message(&mut rng, n)).into_bytes())
        .collect();
    let docs = (0..8)
        .map(|_| {
            payloads::event_packet("doc", &payloads::document(&mut rng, 64 * 1024)).into_bytes()
        })
        .collect();
    vec![
        ("chat message (~100 B)", chat),
        ("64 KB JSON document", docs),
    ]
}

/// Compression ratio and CPU per message for every window size and takeover mode.
///
/// Timed by the wall clock: `/proc`'s CPU time of the running thread itself only moves at
/// scheduler ticks, too coarse for microseconds. On a busy machine that also counts time the
/// thread waited for a core, so each of `rounds` passes over the messages is timed and the
/// fastest kept.
pub(crate) fn run_cpu(rounds: usize) -> Result<Vec<DeflateResult>, BoxError> {
    let mut results = Vec::new();
    for (payload, messages) in messages() {
        for window_bits in WINDOW_BITS {
            for takeover in [Takeover::Kept, Takeover::Reset, Takeover::Fresh] {
                let mut deflater = Deflater::new(Compression::default(), window_bits, takeover);
                let mut compressed = Vec::with_capacity(messages.len() * rounds);
                let mut buf = Vec::new();
                let mut plain = 0usize;
                let mut packed = 0usize;
                let mut compress_ns = u128::MAX;
                for _ in 0..rounds {
                    let started = Instant::now();
                    for message in &messages {
                        deflater.compress(message, &mut buf)?;
                        plain += message.len();
                        packed += buf.len();
                        compressed.push(buf.clone());
                    }
                    compress_ns = compress_ns.min(started.elapsed().as_nanos());
                }
                let mut inflater = Inflater::new(window_bits, takeover);
                let mut out = Vec::new();
                let count = messages.len() * rounds;
                let per_pass = messages.len() as f64;
                let mut decompress_ns = u128::MAX;
                // In the order they were made: with context takeover a payload may refer
                // to any of the messages before it.
                for pass in compressed.chunks(messages.len()) {
                    let started = Instant::now();
                    for (payload, message) in pass.iter().zip(&messages) {
                        inflater.decompress(payload, &mut out, 16 << 20)?;
                        if out != *message {
                            return Err("a message did not inflate back to itself".into());
                        }
                    }
                    decompress_ns = decompress_ns.min(started.elapsed().as_nanos());
                }
                results.push(DeflateResult {
                    payload,
                    window_bits,
                    takeover,
                    plain_bytes: plain as f64 / count as f64,
                    compressed_bytes: packed as f64 / count as f64,
                    compress_ns: compress_ns as f64 / per_pass,
                    decompress_ns: decompress_ns as f64 / per_pass,
                });
            }
        }
    }
    Ok(results)
}

/// RSS growth per compressor and per decompressor that has handled 1 000 chat messages (with
/// context takeover: what a socket keeps between messages). Each window size is measured in
/// a fresh process (`compression --memory-probe BITS`), so that no memory the allocator
/// kept from an earlier measurement is handed out again and hides the growth.
pub(crate) fn run_memory(states: usize) -> Result<Vec<MemoryResult>, BoxError> {
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for window_bits in WINDOW_BITS {
        let output = std::process::Command::new(&exe)
            .args(["compression", "--memory-probe", &window_bits.to_string()])
            .args(["--states", &states.to_string()])
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "the memory probe failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (deflate_bytes, inflate_bytes) =
            parse_probe(&stdout).ok_or_else(|| format!("unexpected probe output {stdout:?}"))?;
        results.push(MemoryResult {
            window_bits,
            deflate_bytes,
            inflate_bytes,
        });
    }
    Ok(results)
}

/// The probe's answer: `@memory DEFLATE_BYTES INFLATE_BYTES`.
fn parse_probe(stdout: &str) -> Option<(f64, f64)> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("@memory "))?;
    let mut fields = line.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some((fields.next()??, fields.next()??))
}

/// Chat messages each probed state handles first (about 100 KB, more than the largest window),
/// so that its window and tables are as full as after a long conversation.
const PROBE_MESSAGES: u64 = 1000;

/// `compression --memory-probe BITS`: makes `states` compressors, then as many
/// decompressors, each through [`PROBE_MESSAGES`] chat messages, and prints the RSS growth per
/// state.
pub(crate) fn memory_probe(window_bits: u8, states: usize) -> Result<(), BoxError> {
    if !(9..=15).contains(&window_bits) {
        return Err("--memory-probe takes window bits from 9 to 15".into());
    }
    let mut rng = payloads::rng();
    let messages: Vec<Vec<u8>> = (0..PROBE_MESSAGES)
        .map(|n| payloads::event_packet("chat", &payloads::chat_message(&mut rng, n)).into_bytes())
        .collect();
    let pid = std::process::id();
    let mut buf = Vec::new();
    let mut payloads = Vec::with_capacity(messages.len());
    let before = crate::runner::rss_kib(pid)?;
    let mut deflaters = Vec::with_capacity(states);
    for _ in 0..states {
        let mut deflater = Deflater::new(Compression::default(), window_bits, Takeover::Kept);
        payloads.clear();
        for message in &messages {
            deflater.compress(message, &mut buf)?;
            payloads.push(buf.clone());
        }
        deflaters.push(deflater);
    }
    let after_deflate = crate::runner::rss_kib(pid)?;
    let mut inflaters = Vec::with_capacity(states);
    let mut out = Vec::new();
    for _ in 0..states {
        let mut inflater = Inflater::new(window_bits, Takeover::Kept);
        for payload in &payloads {
            inflater.decompress(payload, &mut out, 1 << 20)?;
        }
        inflaters.push(inflater);
    }
    let after_inflate = crate::runner::rss_kib(pid)?;
    let per_state = |from: u64, to: u64| to.saturating_sub(from) as f64 * 1024.0 / states as f64;
    println!(
        "@memory {} {}",
        per_state(before, after_deflate),
        per_state(after_deflate, after_inflate)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(window_bits: u8, takeover: Takeover) {
        let mut rng = payloads::rng();
        let mut deflater = Deflater::new(Compression::default(), window_bits, takeover);
        let mut inflater = Inflater::new(window_bits, takeover);
        let (mut packed, mut out) = (Vec::new(), Vec::new());
        for n in 0..200 {
            let message = payloads::event_packet("chat", &payloads::chat_message(&mut rng, n));
            deflater.compress(message.as_bytes(), &mut packed).unwrap();
            inflater.decompress(&packed, &mut out, 1 << 20).unwrap();
            assert_eq!(out, message.as_bytes());
        }
        let doc = payloads::document(&mut rng, 64 * 1024).to_string();
        deflater.compress(doc.as_bytes(), &mut packed).unwrap();
        assert!(packed.len() < doc.len() / 2);
        inflater.decompress(&packed, &mut out, 1 << 20).unwrap();
        assert_eq!(out, doc.as_bytes());
    }

    #[test]
    fn messages_round_trip_in_every_mode() {
        for window_bits in WINDOW_BITS {
            for takeover in [Takeover::Kept, Takeover::Reset, Takeover::Fresh] {
                round_trip(window_bits, takeover);
            }
        }
    }

    #[test]
    fn the_inflate_limit_holds() {
        let mut deflater = Deflater::new(Compression::default(), 15, Takeover::Kept);
        let mut packed = Vec::new();
        deflater
            .compress(&vec![b'a'; 1 << 20], &mut packed)
            .unwrap();
        assert!(packed.len() < 4096);
        let mut inflater = Inflater::new(15, Takeover::Kept);
        let mut out = Vec::new();
        assert!(inflater.decompress(&packed, &mut out, 64 * 1024).is_err());
        assert!(out.len() <= 64 * 1024);
    }

    #[test]
    fn probe_output() {
        assert_eq!(parse_probe("@memory 1024 512.5\n"), Some((1024.0, 512.5)));
        assert_eq!(parse_probe("@memory 1024\n"), None);
        assert_eq!(parse_probe("nothing"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut inflater = Inflater::new(15, Takeover::Kept);
        let mut out = Vec::new();
        assert!(
            inflater
                .decompress(&[0xff, 0xff, 0xff, 0x00, 0x12], &mut out, 1 << 20)
                .is_err()
        );
    }
}
