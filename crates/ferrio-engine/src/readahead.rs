//! Adaptive read-ahead under the WebSocket: small reads while a connection is quiet, large
//! ones while a big message streams in.
//!
//! tungstenite keeps one read buffer per connection for its whole life and never reads more
//! than its size at a time, so that size is a trade: every idle socket holds it, and a large
//! message costs one `read` system call per buffer's worth. This layer lets the engine keep
//! tungstenite's buffer small. Reads go straight into tungstenite's buffer (no copy) until one
//! fills it whole: more is then likely waiting, and the next reads from the stream go into a
//! larger buffer of this layer's, allocated for the occasion, from which tungstenite's small
//! reads are served by copying. The large buffer is freed as soon as the stream has nothing
//! more waiting (a read of it is `Pending`), at its end, or on an error: a socket that went
//! idle holds only a null pointer. While data keeps coming, it is kept and refilled, so a
//! large message costs one `read` per 64 KiB whatever tungstenite's buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of the buffer used while data streams in.
pub(crate) const AHEAD_CAPACITY: usize = 64 * 1024;

/// An I/O stream whose reads switch to a larger buffer of their own while data streams in.
/// Writes pass through.
#[derive(Debug)]
pub(crate) struct ReadAhead<T> {
    inner: T,
    /// `None` while reads go straight into the caller's buffer.
    ahead: Option<Box<Ahead>>,
}

/// Bytes read from the stream and not yet handed to the caller.
#[derive(Debug)]
struct Ahead {
    buf: Box<[u8]>,
    /// `buf[start..end]` is waiting to be handed out.
    start: usize,
    end: usize,
}

impl Ahead {
    fn new() -> Box<Self> {
        Box::new(Ahead {
            buf: vec![0; AHEAD_CAPACITY].into_boxed_slice(),
            start: 0,
            end: 0,
        })
    }

    fn is_drained(&self) -> bool {
        self.start == self.end
    }

    /// Hands out what fits in `out`.
    fn copy_to(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
    }
}

impl<T> ReadAhead<T> {
    pub(crate) fn new(inner: T) -> Self {
        ReadAhead { inner, ahead: None }
    }

    /// Whether the large buffer is allocated.
    #[cfg(test)]
    fn is_reading_ahead(&self) -> bool {
        self.ahead.is_some()
    }
}

impl<T: AsyncRead + Unpin> ReadAhead<T> {
    /// Fills the drained large buffer from the stream. `Ok(false)` when the stream has ended.
    /// On `Pending` or an error the buffer is freed: nothing is waiting.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let Some(ahead) = self.ahead.as_mut() else {
            return Poll::Ready(Ok(true));
        };
        let mut into = ReadBuf::new(&mut ahead.buf);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut into);
        let n = into.filled().len();
        match polled {
            Poll::Ready(Ok(())) if n > 0 => {
                ahead.start = 0;
                ahead.end = n;
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Ok(())) => {
                self.ahead = None;
                Poll::Ready(Ok(false))
            }
            Poll::Ready(Err(err)) => {
                self.ahead = None;
                Poll::Ready(Err(err))
            }
            Poll::Pending => {
                self.ahead = None;
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(ahead) = this.ahead.as_mut() {
            if ahead.is_drained() && !ready!(this.poll_fill(cx))? {
                // End of stream: a read that fills nothing says so.
                return Poll::Ready(Ok(()));
            }
            if let Some(ahead) = this.ahead.as_mut() {
                ahead.copy_to(out);
            }
            return Poll::Ready(Ok(()));
        }
        let wanted = out.remaining();
        let before = out.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
        if wanted > 0 && wanted < AHEAD_CAPACITY && out.filled().len() - before == wanted {
            // The caller's buffer came back full: more is likely waiting. (A caller that reads
            // as much as the large buffer holds gains nothing from it.)
            this.ahead = Some(Ahead::new());
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use tokio::io::AsyncReadExt;

    /// A stream that hands out scripted chunks, one per read (cut to the reader's buffer, the
    /// rest kept for the next read), with a `Pending` wherever the script says so; counts the
    /// reads that reach it.
    #[derive(Default)]
    struct Script {
        steps: VecDeque<Option<Vec<u8>>>,
        reads: usize,
    }

    impl Script {
        fn new(steps: impl IntoIterator<Item = Option<Vec<u8>>>) -> Self {
            Script {
                steps: steps.into_iter().collect(),
                reads: 0,
            }
        }
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            match self.steps.pop_front() {
                None => Poll::Ready(Ok(())),
                Some(None) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Some(Some(mut chunk)) => {
                    let n = out.remaining().min(chunk.len());
                    out.put_slice(&chunk[..n]);
                    if n < chunk.len() {
                        let rest = chunk.split_off(n);
                        self.steps.push_front(Some(rest));
                    }
                    Poll::Ready(Ok(()))
                }
            }
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Reads with `size`-byte reads, as tungstenite does, until the end of the stream.
    async fn read_all(io: &mut ReadAhead<Script>, size: usize) -> (Vec<u8>, usize) {
        let mut got = Vec::new();
        let mut calls = 0;
        let mut buf = vec![0u8; size];
        loop {
            let n = io.read(&mut buf).await.unwrap();
            calls += 1;
            if n == 0 {
                return (got, calls);
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn small_reads_go_straight_through() {
        let frames: Vec<_> = (0..10u8).map(|i| Some(vec![i; 40])).collect();
        let mut io = ReadAhead::new(Script::new(frames));
        let mut buf = [0u8; 512];
        for i in 0..10u8 {
            let n = io.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i; 40][..]);
            assert!(!io.is_reading_ahead(), "no large buffer for small frames");
        }
        assert_eq!(io.inner.reads, 10, "one read of the stream per small frame");
    }

    #[tokio::test]
    async fn a_big_message_in_pieces_arrives_intact_in_few_reads() {
        let data = pattern(1_000_000);
        // Delivered as a network would: uneven pieces, with pauses between some of them.
        let mut steps = Vec::new();
        let mut at = 0;
        let mut piece = 1000;
        while at < data.len() {
            let end = (at + piece).min(data.len());
            steps.push(Some(data[at..end].to_vec()));
            if piece % 3 == 0 {
                steps.push(None);
            }
            at = end;
            piece = piece * 7 % 150_001 + 1;
        }
        let pieces = steps.iter().flatten().count();
        let mut io = ReadAhead::new(Script::new(steps));
        let (got, _) = read_all(&mut io, 512).await;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes arrive intact and in order");
        assert!(
            !io.is_reading_ahead(),
            "the large buffer is freed at the end"
        );
        // Each piece is read from the stream in at most a few reads, not one per 512 bytes.
        let reads = io.inner.reads;
        assert!(
            reads < pieces * 2 + data.len() / AHEAD_CAPACITY * 2 + 10,
            "{reads} reads for {pieces} pieces"
        );
    }

    #[tokio::test]
    async fn a_stream_of_full_buffers_uses_the_large_buffer() {
        let data = pattern(AHEAD_CAPACITY * 4);
        let mut io = ReadAhead::new(Script::new([Some(data.clone())]));
        let (got, calls) = read_all(&mut io, 256).await;
        assert!(got == data);
        // One direct read, then one read of the stream per 64 KiB, then the end.
        assert_eq!(io.inner.reads, 1 + 4 + 1);
        assert_eq!(calls, data.len() / 256 + 1);
    }

    #[tokio::test]
    async fn large_reads_go_straight_through() {
        let data = pattern(AHEAD_CAPACITY * 3);
        let mut io = ReadAhead::new(Script::new([Some(data.clone())]));
        let (got, _) = read_all(&mut io, AHEAD_CAPACITY).await;
        assert!(got == data);
        assert!(
            !io.is_reading_ahead(),
            "no copy for a caller that reads 64 KiB at a time"
        );
    }

    #[tokio::test]
    async fn the_large_buffer_is_freed_when_the_stream_pauses() {
        let mut io = ReadAhead::new(Script::new([Some(vec![1; 512]), None, Some(vec![2; 10])]));
        let mut buf = [0u8; 512];
        assert_eq!(io.read(&mut buf).await.unwrap(), 512);
        assert!(io.is_reading_ahead());
        // The next read finds nothing waiting (Pending), frees the buffer, then reads 10
        // bytes straight into the caller's buffer.
        assert_eq!(io.read(&mut buf).await.unwrap(), 10);
        assert!(!io.is_reading_ahead());
        assert_eq!(&buf[..10], &[2; 10]);
    }

    #[tokio::test]
    async fn the_large_buffer_is_kept_while_data_keeps_coming() {
        let mut io = ReadAhead::new(Script::new([
            Some(vec![1; 100]),
            Some(vec![2; 300]),
            Some(vec![3; 50]),
            None,
        ]));
        let mut buf = [0u8; 100];
        assert_eq!(io.read(&mut buf).await.unwrap(), 100);
        assert!(io.is_reading_ahead());
        for _ in 0..3 {
            assert_eq!(io.read(&mut buf).await.unwrap(), 100);
            assert_eq!(&buf, &[2; 100]);
            assert!(io.is_reading_ahead());
        }
        // Drained after a short read: refilled from the stream, not read around.
        assert_eq!(io.read(&mut buf).await.unwrap(), 50);
        assert_eq!(&buf[..50], &[3; 50]);
        assert_eq!(io.inner.reads, 3);
        // Nothing waiting: freed, then the end of the stream.
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        assert!(!io.is_reading_ahead());
    }

    #[tokio::test]
    async fn errors_and_the_end_of_stream_pass_through() {
        struct Failing;
        impl AsyncRead for Failing {
            fn poll_read(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
                _: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
            }
        }
        let mut io = ReadAhead::new(Failing);
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

        let mut io = ReadAhead::new(Script::new([Some(vec![7; 8])]));
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        assert!(io.is_reading_ahead());
        assert_eq!(io.read(&mut buf).await.unwrap(), 0, "end of stream");
        assert!(!io.is_reading_ahead());
    }
}
