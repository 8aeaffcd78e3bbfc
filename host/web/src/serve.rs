//! The accept loop. `axum::serve` sets no timeouts, so hyper's HTTP/1 server is driven
//! here directly: a header-read timeout (hyper's, which on a kept-alive connection runs
//! from the end of the previous answer, so it also closes idle connections), a write
//! timeout (a client that reads nothing of its answer), a bound on the connections served
//! at once, and graceful shutdown (stop accepting, let each connection finish its
//! request, wait for all of them). The body-read timeout is the routes' (`call_plugin`,
//! the admin API), since only they know how much body to expect.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;

use lutetia_model::settings::HttpSettings;
use lutetia_services::metrics::Metrics;

/// Serves `router` on `listener` until `stop` turns true, then waits for the connections
/// to finish the request they are serving. Open connections are counted in `metrics`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections as usize));
    // Connections hold a receiver each: `closing` tells them to finish, and the loop
    // waits for `finished.closed()` (every receiver dropped).
    let (closing, closing_rx) = watch::channel(false);
    let (finished, finished_rx) = watch::channel(());
    let settings = Arc::new(settings);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            _ = turned_true(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            _ = turned_true(&mut stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let settings = settings.clone();
        let closing = closing_rx.clone();
        let finished = finished_rx.clone();
        let open = metrics.connection_opened();
        tokio::spawn(async move {
            serve_connection(stream, router, &settings, closing).await;
            tracing::trace!(%peer, "connection closed");
            drop(open);
            drop(slot);
            drop(finished);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    drop(closing_rx);
    drop(finished_rx);
    finished.closed().await;
    Ok(())
}

/// Resolves once the flag is true, or its sender is gone (no guard held: `Send`).
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|on| *on).await;
}

/// An error from `accept` that concerns one connection only is skipped; others (out of
/// file descriptors) are logged and retried after a second, as hyper 0.14 did.
async fn accept_failed(error: &io::Error) {
    let one_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    );
    if !one_connection {
        tracing::error!(%error, "cannot accept connections; retrying in a second");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    settings: &HttpSettings,
    mut closing: watch::Receiver<bool>,
) {
    let io = TokioIo::new(WriteTimeout::new(
        stream,
        Duration::from_millis(settings.write_timeout_ms),
    ));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut router = router.clone();
        // A `Router` is always ready: calling it without `poll_ready` is allowed.
        tower::Service::call(&mut router, request.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut told = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = turned_true(&mut closing), if !told => {
                told = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream whose writes fail once they have made no progress for `timeout`: a client
/// that stops reading its answer cannot hold the connection (and what the answer holds).
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// `Ready` passes through and resets the clock; `Pending` starts it, and fails once
    /// it has run out.
    fn watch<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client read nothing of the answer in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, polled)
    }
}
