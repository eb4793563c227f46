//! What both Rust peers share (included with `#[path]`): binding `127.0.0.1:$PORT` with the
//! `listening on PORT` line, TCP_NODELAY on accepted sockets, and serving until SIGINT/SIGTERM.
//! The same steps as `examples/support/serve.rs`, minus the logging: peers log nothing.

use std::future::Future;
use std::io::Write;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};

/// Serves `app` on `127.0.0.1:$PORT` (default 3000; `0` picks a free port) until SIGINT or
/// SIGTERM, then runs `on_shutdown` (closing the realtime sessions) and lets open requests
/// finish. Exits with status 2 on a bad `PORT`, 1 when it cannot bind or serve.
pub(crate) async fn run(
    name: &str,
    app: Router,
    on_shutdown: impl Future<Output = ()> + Send + 'static,
) {
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
    // The runner waits for this line: flush it even when stdout is a pipe.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on {port}").and_then(|()| stdout.flush());
    drop(stdout);

    // Small realtime frames leave at once instead of waiting for the previous ones' ACK.
    let listener = listener.tap_io(|stream: &mut TcpStream| {
        let _ = stream.set_nodelay(true);
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            on_shutdown.await;
        })
        .await;
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
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
