//! What every example server shares (included with `#[path]`): tracing setup, binding
//! `127.0.0.1:$PORT` with the `listening on PORT` line, and serving until SIGINT/SIGTERM.

use std::future::Future;

use axum::Router;

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::EnvFilter;

/// Logs to stderr at the level of `RUST_LOG` (default `info`).
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}

/// Binds `127.0.0.1:$PORT` (default 3000; `0` picks a free port) and prints
/// `listening on PORT` with the real port. Exits with a message when it cannot.
/// Accepted connections have Nagle's algorithm off: small realtime packets leave at once
/// instead of waiting up to 40 ms for an acknowledgement of the previous ones.
pub(crate) async fn bind(name: &str) -> Listener {
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| {
            eprintln!("{name}: PORT must be a port number, got {port:?}");
            std::process::exit(2);
        }),
        Err(_) => 3000,
    };
    let listener = match TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await
    {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("{name}: cannot bind 127.0.0.1:{port}: {err}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("listening on {port}");
    tracing::info!(port, "{name} ready");
    listener.tap_io(no_delay)
}

fn no_delay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
}

/// Serves `app` on `127.0.0.1:$PORT` (see [`bind`]) until SIGINT or SIGTERM, then runs
/// `on_shutdown` (closing the realtime sessions) and lets open requests finish. Exits with
/// status 1 if the server fails.
#[allow(dead_code)] // examples that need their port first use `bind` and `serve`
pub(crate) async fn run<F>(
    name: &str,
    app: Router,
    on_shutdown: impl FnOnce() -> F + Send + 'static,
) where
    F: Future<Output = ()> + Send,
{
    serve(name, bind(name).await, app, on_shutdown).await;
}

/// The listener [`bind`] returns.
pub(crate) type Listener = TapIo<TcpListener, fn(&mut TcpStream)>;

/// The port a listener from [`bind`] is bound to.
#[allow(dead_code)] // not every example needs it
pub(crate) fn port(listener: &Listener) -> u16 {
    axum::serve::Listener::local_addr(listener).map_or(0, |addr| addr.port())
}

/// [`run`] on a listener already bound (for a server that needs its port first).
pub(crate) async fn serve<F>(
    name: &str,
    listener: Listener,
    app: Router,
    on_shutdown: impl FnOnce() -> F + Send + 'static,
) where
    F: Future<Output = ()> + Send,
{
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_shutdown().await;
    })
    .await;
    tracing::debug!("server stopped");
    if let Err(err) = served {
        eprintln!("{name}: server error: {err}");
        std::process::exit(1);
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
