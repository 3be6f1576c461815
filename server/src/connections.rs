//! Connection limits, applied before TLS: at most `max_connections` open at once (one more is
//! closed on arrival, so the excess costs a socket and nothing else), and every connection
//! with no byte read or written for `idle_timeout` is closed, whatever its protocol (HTTP/1
//! keep-alive, HTTP/2, or a client that never sends anything after the handshake).

use std::future::{Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// The acceptor under TLS that takes a connection slot and arms the idle timer.
#[derive(Clone)]
pub struct LimitAcceptor {
    connections: Arc<tokio::sync::Semaphore>,
    metrics: Arc<Metrics>,
    idle: Duration,
}

impl LimitAcceptor {
    pub fn new(
        connections: Arc<tokio::sync::Semaphore>,
        metrics: Arc<Metrics>,
        idle: Duration,
    ) -> Self {
        Self {
            connections,
            metrics,
            idle,
        }
    }
}

impl<S> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.connections.clone().try_acquire_owned() {
            Ok(permit) => {
                let _ = stream.set_nodelay(true);
                std::future::ready(Ok((Guarded::new(stream, permit, self.idle), service)))
            }
            Err(_) => {
                // Dropping the stream closes it before any TLS work is done.
                self.metrics.connection_refused();
                std::future::ready(Err(io::Error::other("connection limit reached")))
            }
        }
    }
}

/// A connection holding its slot, closed after `idle` without traffic.
pub struct Guarded<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Guarded<S> {
    fn new(inner: S, slot: OwnedSemaphorePermit, idle: Duration) -> Self {
        Self {
            inner,
            _slot: slot,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// Passes on a poll of the inner stream: traffic re-arms the idle timer; while the stream
    /// waits, the timer may fire and end the connection with `TimedOut`.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        traffic: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Ok(v)) => {
                if traffic(&v) {
                    self.touch();
                }
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.deadline.as_mut().poll(cx).map(|()| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle too long",
                ))
            }),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() > before;
        self.watch(cx, polled, |_| read)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled, |n| *n > 0)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
