//! Lingering close: when the server ends a connection, it first sends its FIN (after the
//! answer), then reads and discards what the client is still sending, and only then closes.
//!
//! Why: an early answer (413, 401/403, 404, 405, 415, 408...) leaves the request body unread,
//! and hyper then closes the connection after the answer with the rest of the body still in the
//! socket's receive queue or in flight. Closing a TCP socket with unread data makes the kernel
//! send an RST instead of a FIN (`TCPAbortOnClose` in `/proc/net/netstat`); the client, still
//! sending its body, sees "connection reset" / "broken pipe" on its next write, and most HTTP/1
//! clients report that instead of the answer (the RST also drops answer bytes the server's
//! kernel has not sent yet or must resend). Draining lets the client finish sending, read the
//! answer and close; the server then closes a socket with nothing unread: FIN, no RST.
//!
//! Bounds: the drain reads into a fixed 8 KiB stack buffer (nothing is kept), and stops at the
//! client's FIN or error, after [`LINGER_BYTES`], after [`LINGER_IDLE`] without data, or after
//! [`LINGER_TIME`] in all, whichever comes first. A connection the client closed first (the
//! usual keep-alive end) is not drained at all.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Longest a closing connection is drained.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// The drain stops when the client sends nothing for this long.
pub const LINGER_IDLE: Duration = Duration::from_millis(500);
/// Most bytes a closing connection reads and discards.
pub const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// A TCP listener whose connections close with a lingering close ([`LingeringStream`]).
#[derive(Debug)]
pub struct LingeringListener(TcpListener);

impl LingeringListener {
    /// Wraps a bound listener.
    pub fn new(listener: TcpListener) -> Self {
        Self(listener)
    }
}

impl axum::serve::Listener for LingeringListener {
    type Io = LingeringStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's loop for TcpListener: it retries connection errors, sleeps on the others.
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (LingeringStream::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream whose `poll_shutdown` (called by hyper once the last answer is flushed) sends
/// the FIN, then drains the read side within the bounds above.
#[derive(Debug)]
pub struct LingeringStream {
    io: TcpStream,
    /// The client ended its side (EOF) or the connection failed: nothing left to drain.
    peer_done: bool,
    /// Set by the first `poll_shutdown`.
    linger: Option<Linger>,
}

#[derive(Debug)]
struct Linger {
    write_closed: bool,
    done: bool,
    left: usize,
    deadline: Pin<Box<Sleep>>,
    idle: Pin<Box<Sleep>>,
}

impl LingeringStream {
    /// Wraps an accepted stream.
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            peer_done: false,
            linger: None,
        }
    }

    /// Reads and discards until the client's FIN or a bound; `Pending` while waiting for data.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(linger) = self.linger.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8 * 1024];
        while !linger.done {
            if self.peer_done
                || linger.left == 0
                || linger.deadline.as_mut().poll(cx).is_ready()
                || linger.idle.as_mut().poll(cx).is_ready()
            {
                linger.done = true;
                break;
            }
            let room = linger.left.min(scratch.len());
            let mut buf = ReadBuf::new(&mut scratch[..room]);
            // Pending registers the waker; tokio's budget makes a long drain yield in between.
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => self.peer_done = true,
                Ok(()) => {
                    linger.left -= buf.filled().len();
                    linger.idle.as_mut().reset(Instant::now() + LINGER_IDLE);
                }
                Err(_) => self.peer_done = true,
            }
        }
        Poll::Ready(())
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (room, before) = (buf.remaining(), buf.filled().len());
        let res = ready!(Pin::new(&mut this.io).poll_read(cx, buf));
        if res.is_err() || (room > 0 && buf.filled().len() == before) {
            this.peer_done = true;
        }
        Poll::Ready(res)
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let linger = this.linger.get_or_insert_with(|| Linger {
            write_closed: false,
            done: false,
            left: LINGER_BYTES,
            deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
            idle: Box::pin(tokio::time::sleep(LINGER_IDLE)),
        });
        if !linger.write_closed {
            // The FIN goes right after the answer: the client sees the end of the answer now.
            let res = ready!(Pin::new(&mut this.io).poll_shutdown(cx));
            linger.write_closed = true;
            if res.is_err() {
                linger.done = true;
                return Poll::Ready(res);
            }
        }
        ready!(this.poll_drain(cx));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connected pair on 127.0.0.1: (the server's lingering side, the client).
    async fn pair() -> (LingeringStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (LingeringStream::new(server), client)
    }

    /// How long the server's shutdown takes while `client` does its part.
    async fn shutdown_time(
        mut server: LingeringStream,
        client: impl Future<Output = ()> + Send + 'static,
    ) -> Duration {
        let client = tokio::spawn(client);
        let start = Instant::now();
        server.shutdown().await.unwrap();
        let took = start.elapsed();
        drop(server);
        client.abort();
        took
    }

    #[tokio::test]
    async fn a_client_that_closed_first_is_not_drained() {
        let (mut server, client) = pair().await;
        drop(client);
        let mut b = [0u8; 16];
        assert_eq!(server.read(&mut b).await.unwrap(), 0);
        let took = shutdown_time(server, async {}).await;
        assert!(took < Duration::from_millis(50), "{took:?}");
    }

    #[tokio::test]
    async fn the_drain_ends_at_the_clients_fin_and_the_client_sees_the_servers_first() {
        let (server, mut client) = pair().await;
        let took = shutdown_time(server, async move {
            client.write_all(&[b'x'; 100_000]).await.unwrap();
            // The server's FIN comes before the drain: the client reads the end at once.
            let mut b = [0u8; 16];
            assert_eq!(client.read(&mut b).await.unwrap(), 0);
            drop(client);
        })
        .await;
        assert!(took < LINGER_IDLE, "{took:?}");
    }

    #[tokio::test]
    async fn a_silent_client_is_dropped_after_the_idle_bound_and_a_trickling_one_after_the_total() {
        let (silent, _open) = pair().await;
        let (trickled, mut trickling) = pair().await;
        let silent = shutdown_time(silent, async {});
        let trickled = shutdown_time(trickled, async move {
            while trickling.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let (silent, trickled) = tokio::join!(silent, trickled);
        let slack = Duration::from_millis(800);
        assert!(
            silent >= LINGER_IDLE && silent < LINGER_IDLE + slack,
            "{silent:?}"
        );
        assert!(
            trickled >= LINGER_TIME && trickled < LINGER_TIME + slack,
            "{trickled:?}"
        );
    }

    #[tokio::test]
    async fn a_flooding_client_is_dropped_after_the_byte_bound() {
        let (server, mut client) = pair().await;
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        let took = shutdown_time(server, async move {
            let piece = vec![b'x'; 64 * 1024];
            while client.write_all(&piece).await.is_ok() {
                counted.fetch_add(piece.len(), Ordering::Relaxed);
            }
        })
        .await;
        assert!(took < LINGER_IDLE, "{took:?}");
        // What the server read, plus what sits in the socket buffers.
        assert!(sent.load(Ordering::Relaxed) >= LINGER_BYTES);
    }
}
