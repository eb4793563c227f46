//! Handlers with extractors, as in axum: connect handlers, event handlers, disconnect
//! handlers and connect middlewares, written as async fns, closures or plain fns.
//!
//! A handler is any function whose arguments all implement the extractor trait of its kind
//! ([`FromConnectParts`], [`FromEventParts`], [`FromDisconnectParts`]) and which returns
//! `()` or `Result<(), E>` (an error is logged with the namespace, socket and event), or a
//! future of either.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ferrio_engine::Utf8Bytes;

use crate::client::Running;
use crate::error::{ConnectRefusal, DisconnectReason};
use crate::extract::EventParts;
use crate::socket::SocketRef;

/// Runs a handler's future on the caller's task until it first has to wait, and only then
/// spawns it. Handlers that finish without waiting (most do) cost no task, and everything a
/// handler sends before its first `.await` leaves in the order the packets arrived.
///
/// A spawned handler counts against its connection's
/// [`max_concurrent_handlers`](crate::IoBuilder::max_concurrent_handlers) until it ends. An
/// error it returns is logged as `what` (the event, `connect` or `disconnect`) of `socket`.
pub(crate) fn run<Out: HandlerOutput>(
    socket: &SocketRef,
    what: Utf8Bytes,
    future: impl Future<Output = Out> + Send + 'static,
) {
    inline_or_spawn(
        (socket, what),
        future,
        |(socket, what)| {
            let running = Running::start(&socket.0.engine, socket.0.ns.shared.max_handlers);
            (running, socket.clone(), what)
        },
        |(socket, what), out| report(socket, &what, out),
        |(running, socket, what), out| {
            drop(running);
            report(&socket, &what, out);
        },
    );
}

fn report<Out: HandlerOutput>(socket: &SocketRef, what: &str, out: Out) {
    if let Some(e) = out.into_error() {
        log_error(socket, what, &e);
    }
}

/// Polls `future` once here. Ready: `done` gets its output. Pending: `spawn` turns `origin`
/// into what the spawned task keeps, which `finished` gets with the output at the end.
fn inline_or_spawn<O, K, F>(
    origin: O,
    future: F,
    spawn: impl FnOnce(O) -> K,
    done: impl FnOnce(O, F::Output),
    finished: impl FnOnce(K, F::Output) + Send + 'static,
) where
    F: Future + Send + 'static,
    F::Output: Send,
    K: Send + 'static,
{
    let mut future = Box::pin(future);
    // A future must register the waker of every poll, so polling once with a no-op waker
    // and then handing it to the runtime (which polls it again) loses no wake-up.
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => done(origin, out),
        Poll::Pending => match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let kept = spawn(origin);
                drop(runtime.spawn(async move {
                    let out = future.await;
                    finished(kept, out);
                }));
            }
            Err(_) => tracing::error!("a handler must wait, but there is no tokio runtime here"),
        },
    }
}

/// Logs a handler's error inside a span naming where it happened.
pub(crate) fn log_error(socket: &SocketRef, event: &str, error: &dyn fmt::Display) {
    let span = tracing::error_span!("socketio", ns = socket.ns(), socket = %socket.id(), event);
    let _entered = span.enter();
    tracing::error!(%error, "handler failed");
}

/// What a handler may return: `()`, or `Result<(), E>` whose error is logged.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by a handler",
    label = "a handler must return `()` or `Result<(), E>`",
    note = "a handler (or its future) returns `()` or `Result<(), E>` where `E: Display + Send + 'static`; the error is logged",
    note = "to answer the client, take an `AckSender` argument and send through it instead of returning a value"
)]
pub trait HandlerOutput: Send + 'static {
    /// The error to log, if any.
    fn into_error(self) -> Option<String>;
}

impl HandlerOutput for () {
    fn into_error(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display + Send + 'static> HandlerOutput for Result<(), E> {
    fn into_error(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// Extracts a value for a connect handler or middleware from the socket being connected.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a connect handler or connect middleware",
    label = "not an extractor of connect handlers",
    note = "the extractors of connect handlers and middlewares are SocketRef, Data<T> and TryData<T> (the client's `auth` payload), State<T>, Extension<T> and Io",
    note = "AckSender, Args, Payload and Event are only for event handlers; DisconnectReason only for disconnect handlers"
)]
pub trait FromConnectParts: Sized {
    /// Why extraction failed (refuses the connection in a middleware, is logged in a handler).
    type Rejection: fmt::Display;
    /// Extracts the value.
    fn from_connect_parts(socket: &SocketRef) -> Result<Self, Self::Rejection>;
}

/// Extracts a value for an event handler from the incoming event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of an event handler",
    label = "not an extractor of events",
    note = "the extractors of event handlers are SocketRef, Data<T> (the first argument), TryData<T>, Args<T> (all the arguments), Payload, AckSender, Event, State<T>, Extension<T>, Io, and Option<T> of any of them",
    note = "to deserialize the event's data, wrap the type: `Data<{Self}>` for the first argument"
)]
pub trait FromEventParts: Sized {
    /// Why extraction failed: the client's ack (if it asked for one) gets an error, or the
    /// failure is logged and the event skipped.
    type Rejection: fmt::Display;
    /// Extracts the value; it may take parts (such as the ack sender) out of the event.
    fn from_event_parts(parts: &mut EventParts) -> Result<Self, Self::Rejection>;
}

/// Extracts a value for a disconnect handler.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an argument of a disconnect handler",
    label = "not an extractor of disconnect handlers",
    note = "the extractors of disconnect handlers are SocketRef, DisconnectReason, State<T>, Extension<T> and Io",
    note = "a disconnect carries no data: Data, TryData, Args, Payload, AckSender and Event are not extractors of disconnect handlers"
)]
pub trait FromDisconnectParts: Sized {
    /// Why extraction failed (the failure is logged).
    type Rejection: fmt::Display;
    /// Extracts the value.
    fn from_disconnect_parts(
        socket: &SocketRef,
        reason: DisconnectReason,
    ) -> Result<Self, Self::Rejection>;
}

#[doc(hidden)]
#[derive(Debug)]
pub struct Async;
#[doc(hidden)]
#[derive(Debug)]
pub struct Blocking;

/// A function that handles a socket joining a namespace. `M` is an inference marker.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connect handler",
    label = "not a connect handler",
    note = "every argument must be an extractor of connect handlers (SocketRef, Data<T>, TryData<T>, State<T>, Extension<T>, Io), at most 8 of them; the function must return () or Result<(), E> with E: Display (or a future of one), and async handlers' futures must be Send + 'static",
    note = "the function itself must be `Fn` (not only `FnMut` or `FnOnce`) and Send + Sync + 'static: a closure takes its captures with `move` and clones what it hands on"
)]
pub trait ConnectHandler<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, socket: SocketRef);

    /// Puts a connect middleware in front of this handler: it runs before the client is
    /// admitted, and an error refuses the connection. Middlewares run in the order added.
    fn with<W, N>(self, middleware: W) -> Guarded
    where
        Self: Sized,
        W: ConnectMiddleware<N>,
        M: 'static,
        N: 'static,
    {
        Guarded {
            handler: boxed_connect(self),
            middlewares: vec![boxed_middleware(middleware)],
        }
    }
}

/// A function that handles one event. `M` is an inference marker.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event handler",
    label = "not an event handler",
    note = "every argument must be an extractor of events (SocketRef, Data<T>, TryData<T>, Args<T>, Payload, AckSender, Event, State<T>, Extension<T>, Io, or Option<T> of one), at most 8 of them; the function must return () or Result<(), E> with E: Display (or a future of one), and async handlers' futures must be Send + 'static",
    note = "the event's data is read through `Data<T>`, e.g. `|Data(text): Data<String>|`, not by taking `T` itself",
    note = "the function itself must be `Fn` (not only `FnMut` or `FnOnce`) and Send + Sync + 'static: a closure takes its captures with `move` and clones what it hands on"
)]
pub trait EventHandler<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, parts: EventParts);
}

/// A function called when a socket leaves its namespace. `M` is an inference marker.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a disconnect handler",
    label = "not a disconnect handler",
    note = "every argument must be an extractor of disconnect handlers (SocketRef, DisconnectReason, State<T>, Extension<T>, Io), at most 8 of them; the function must return () or Result<(), E> with E: Display (or a future of one), and async handlers' futures must be Send + 'static",
    note = "the function itself must be `Fn` (not only `FnMut` or `FnOnce`) and Send + Sync + 'static: a closure takes its captures with `move` and clones what it hands on"
)]
pub trait DisconnectHandler<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, socket: SocketRef, reason: DisconnectReason);
}

/// A boxed future of a middleware's verdict.
pub(crate) type Verdict = Pin<Box<dyn Future<Output = Result<(), ConnectRefusal>> + Send>>;

/// A function that admits or refuses a client before its connect handler runs: it returns
/// `Result<(), E>` (or a future of it) where `E: Into<ConnectRefusal>` (a `&str`, a `String`
/// or a [`ConnectRefusal`] with data).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connect middleware",
    label = "not a connect middleware",
    note = "every argument must be an extractor of connect handlers (SocketRef, Data<T>, TryData<T>, State<T>, Extension<T>, Io), at most 8 of them; the function must return Result<(), E> where E: Into<ConnectRefusal> (a &str, a String or a ConnectRefusal), or a Send + 'static future of one",
    note = "a middleware that admits the client returns `Ok(())`: unlike a handler, it cannot return ()",
    note = "the function itself must be `Fn` (not only `FnMut` or `FnOnce`) and Send + Sync + 'static"
)]
pub trait ConnectMiddleware<M>: Send + Sync + 'static {
    #[doc(hidden)]
    fn call(&self, socket: &SocketRef) -> Verdict;
}

pub(crate) type BoxedConnect = Arc<dyn Fn(SocketRef) + Send + Sync>;
pub(crate) type BoxedEvent = Callback<dyn Fn(EventParts) + Send + Sync>;
pub(crate) type BoxedDisconnect = Callback<dyn Fn(SocketRef, DisconnectReason) + Send + Sync>;
pub(crate) type BoxedMiddleware = Arc<dyn Fn(&SocketRef) -> Verdict + Send + Sync>;

/// A cloneable callback registered on a socket. One without state (a fn item, or a closure
/// that captures nothing: most handlers) is a static reference and costs no allocation; the
/// others are reference counted. Sockets register their handlers one by one, so this saves an
/// allocation per handler per socket.
pub(crate) enum Callback<F: ?Sized + 'static> {
    Static(&'static F),
    Counted(Arc<F>),
}

impl<F: ?Sized> Clone for Callback<F> {
    fn clone(&self) -> Self {
        match self {
            Self::Static(f) => Self::Static(*f),
            Self::Counted(f) => Self::Counted(f.clone()),
        }
    }
}

impl<F: ?Sized> std::ops::Deref for Callback<F> {
    type Target = F;
    fn deref(&self) -> &F {
        match self {
            Self::Static(f) => f,
            Self::Counted(f) => f,
        }
    }
}

/// Whether a value of type `T` can be leaked for free: no bytes, and nothing to drop.
fn free_to_leak<T>(_: &T) -> bool {
    std::mem::size_of::<T>() == 0 && !std::mem::needs_drop::<T>()
}

pub(crate) fn boxed_connect<H: ConnectHandler<M>, M: 'static>(handler: H) -> BoxedConnect {
    Arc::new(move |socket| handler.call(socket))
}
pub(crate) fn boxed_event<H: EventHandler<M>, M: 'static>(handler: H) -> BoxedEvent {
    let f = move |parts| handler.call(parts);
    if free_to_leak(&f) {
        // Boxing a zero-sized value allocates nothing, so leaking it leaks nothing.
        let f: &'static (dyn Fn(EventParts) + Send + Sync) = Box::leak(Box::new(f));
        Callback::Static(f)
    } else {
        Callback::Counted(Arc::new(f))
    }
}
pub(crate) fn boxed_disconnect<H: DisconnectHandler<M>, M: 'static>(handler: H) -> BoxedDisconnect {
    let f = move |socket, reason| handler.call(socket, reason);
    if free_to_leak(&f) {
        let f: &'static (dyn Fn(SocketRef, DisconnectReason) + Send + Sync) =
            Box::leak(Box::new(f));
        Callback::Static(f)
    } else {
        Callback::Counted(Arc::new(f))
    }
}
pub(crate) fn boxed_middleware<W: ConnectMiddleware<M>, M: 'static>(
    middleware: W,
) -> BoxedMiddleware {
    Arc::new(move |socket| middleware.call(socket))
}

/// A connect handler with its middlewares ([`ConnectHandler::with`]).
#[derive(Clone)]
pub struct Guarded {
    pub(crate) handler: BoxedConnect,
    pub(crate) middlewares: Vec<BoxedMiddleware>,
}

impl Guarded {
    /// Adds another middleware, run after the ones already added.
    pub fn with<W: ConnectMiddleware<N>, N: 'static>(mut self, middleware: W) -> Self {
        self.middlewares.push(boxed_middleware(middleware));
        self
    }
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("middlewares", &self.middlewares.len())
            .finish_non_exhaustive()
    }
}

/// What a namespace needs to accept sockets: a connect handler or a [`Guarded`] one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot handle a namespace's connections",
    label = "not a connect handler, nor one with middlewares",
    note = "a namespace takes a connect handler, or one with middlewares (`handler.with(middleware)`): a function whose arguments are extractors of connect handlers (SocketRef, Data<T>, TryData<T>, State<T>, Extension<T>, Io), at most 8 of them, returning () or Result<(), E> with E: Display (or a Send + 'static future of one)",
    note = "AckSender, Args, Payload and Event are only for event handlers (register them with `socket.on`); DisconnectReason only for `socket.on_disconnect`"
)]
pub trait IntoNamespaceHandler<M> {
    #[doc(hidden)]
    fn into_guarded(self) -> Guarded;
}

#[doc(hidden)]
#[derive(Debug)]
pub struct GuardedMarker(PhantomData<()>);

impl<H: ConnectHandler<M>, M: 'static> IntoNamespaceHandler<M> for H {
    fn into_guarded(self) -> Guarded {
        Guarded {
            handler: boxed_connect(self),
            middlewares: Vec::new(),
        }
    }
}

impl IntoNamespaceHandler<GuardedMarker> for Guarded {
    fn into_guarded(self) -> Guarded {
        self
    }
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Fut, Out, $($ty,)*> ConnectHandler<(Async, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: HandlerOutput,
            $($ty: FromConnectParts + Send + 'static,)*
        {
            fn call(&self, socket: SocketRef) {
                $(let $ty = match $ty::from_connect_parts(&socket) {
                    Ok(value) => value,
                    Err(e) => return log_error(&socket, "connect", &e),
                };)*
                run(&socket, Utf8Bytes::from_static("connect"), (self)($($ty,)*));
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Out, $($ty,)*> ConnectHandler<(Blocking, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Out + Send + Sync + 'static,
            Out: HandlerOutput,
            $($ty: FromConnectParts + Send + 'static,)*
        {
            fn call(&self, socket: SocketRef) {
                $(let $ty = match $ty::from_connect_parts(&socket) {
                    Ok(value) => value,
                    Err(e) => return log_error(&socket, "connect", &e),
                };)*
                if let Some(e) = (self)($($ty,)*).into_error() {
                    log_error(&socket, "connect", &e);
                }
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Fut, Out, $($ty,)*> EventHandler<(Async, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: HandlerOutput,
            $($ty: FromEventParts + Send + 'static,)*
        {
            fn call(&self, mut parts: EventParts) {
                $(let $ty = match $ty::from_event_parts(&mut parts) {
                    Ok(value) => value,
                    Err(e) => return parts.reject(&e),
                };)*
                let future = (self)($($ty,)*);
                let (socket, event) = parts.into_origin();
                run(&socket, event, future);
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Out, $($ty,)*> EventHandler<(Blocking, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Out + Send + Sync + 'static,
            Out: HandlerOutput,
            $($ty: FromEventParts + Send + 'static,)*
        {
            fn call(&self, mut parts: EventParts) {
                $(let $ty = match $ty::from_event_parts(&mut parts) {
                    Ok(value) => value,
                    Err(e) => return parts.reject(&e),
                };)*
                if let Some(e) = (self)($($ty,)*).into_error() {
                    let (socket, event) = parts.into_origin();
                    log_error(&socket, &event, &e);
                }
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Fut, Out, $($ty,)*> DisconnectHandler<(Async, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Out> + Send + 'static,
            Out: HandlerOutput,
            $($ty: FromDisconnectParts + Send + 'static,)*
        {
            fn call(&self, socket: SocketRef, reason: DisconnectReason) {
                $(let $ty = match $ty::from_disconnect_parts(&socket, reason) {
                    Ok(value) => value,
                    Err(e) => return log_error(&socket, "disconnect", &e),
                };)*
                run(&socket, Utf8Bytes::from_static("disconnect"), (self)($($ty,)*));
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Out, $($ty,)*> DisconnectHandler<(Blocking, Out, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Out + Send + Sync + 'static,
            Out: HandlerOutput,
            $($ty: FromDisconnectParts + Send + 'static,)*
        {
            fn call(&self, socket: SocketRef, reason: DisconnectReason) {
                $(let $ty = match $ty::from_disconnect_parts(&socket, reason) {
                    Ok(value) => value,
                    Err(e) => return log_error(&socket, "disconnect", &e),
                };)*
                if let Some(e) = (self)($($ty,)*).into_error() {
                    log_error(&socket, "disconnect", &e);
                }
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut)]
        impl<F, Fut, E, $($ty,)*> ConnectMiddleware<(Async, E, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<(), E>> + Send + 'static,
            E: Into<ConnectRefusal> + 'static,
            $($ty: FromConnectParts + Send + 'static,)*
        {
            fn call(&self, socket: &SocketRef) -> Verdict {
                $(let $ty = match $ty::from_connect_parts(socket) {
                    Ok(value) => value,
                    Err(e) => {
                        let refusal = ConnectRefusal::new(e.to_string());
                        return Box::pin(std::future::ready(Err(refusal)));
                    }
                };)*
                let future = (self)($($ty,)*);
                Box::pin(async move { future.await.map_err(Into::into) })
            }
        }

        #[allow(non_snake_case, unused_variables, unused_mut, unused_labels)]
        impl<F, E, $($ty,)*> ConnectMiddleware<(Blocking, E, $($ty,)*)> for F
        where
            F: Fn($($ty,)*) -> Result<(), E> + Send + Sync + 'static,
            E: Into<ConnectRefusal> + 'static,
            $($ty: FromConnectParts + Send + 'static,)*
        {
            fn call(&self, socket: &SocketRef) -> Verdict {
                let verdict = 'verdict: {
                    $(let $ty = match $ty::from_connect_parts(socket) {
                        Ok(value) => value,
                        Err(e) => break 'verdict Err(ConnectRefusal::new(e.to_string())),
                    };)*
                    (self)($($ty,)*).map_err(Into::into)
                };
                Box::pin(std::future::ready(verdict))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn ready_futures_finish_inline_and_waiting_ones_are_spawned_with_what_they_keep() {
        let spawned = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (f, s) = (finished.clone(), spawned.clone());
        inline_or_spawn(
            "origin",
            async { 1 },
            |_| s.fetch_add(1, Ordering::SeqCst),
            |origin, out| {
                assert_eq!((origin, out), ("origin", 1));
                f.fetch_add(1, Ordering::SeqCst);
            },
            |_, _| unreachable!("a ready future is not spawned"),
        );
        assert_eq!(finished.load(Ordering::SeqCst), 1, "ran inline");
        assert_eq!(spawned.load(Ordering::SeqCst), 0, "no task, nothing kept");

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (f, s) = (finished.clone(), spawned.clone());
        inline_or_spawn(
            "origin",
            async move { rx.await.is_ok() },
            |origin| {
                s.fetch_add(1, Ordering::SeqCst);
                (origin, f)
            },
            |_, _| unreachable!("a waiting future is not done inline"),
            |(origin, f), out| {
                assert_eq!((origin, out), ("origin", true));
                f.fetch_add(1, Ordering::SeqCst);
            },
        );
        assert_eq!(spawned.load(Ordering::SeqCst), 1, "spawned once");
        assert_eq!(finished.load(Ordering::SeqCst), 1, "waits for its channel");
        tx.send(()).unwrap();
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) == 2 {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the spawned future was never woken");
    }

    #[test]
    fn handlers_without_state_cost_no_allocation_and_the_others_are_counted() {
        fn plain(_: SocketRef) {}
        assert!(matches!(boxed_disconnect(plain), Callback::Static(_)));
        assert!(matches!(
            boxed_disconnect(|_: SocketRef| {}),
            Callback::Static(_)
        ));

        let calls = Arc::new(AtomicUsize::new(0));
        let counted = {
            let calls = calls.clone();
            boxed_disconnect(move |_: SocketRef| {
                calls.fetch_add(1, Ordering::SeqCst);
            })
        };
        assert!(matches!(counted, Callback::Counted(_)));
        assert_eq!(Arc::strong_count(&calls), 2);
        drop(counted.clone());
        drop(counted);
        assert_eq!(
            Arc::strong_count(&calls),
            1,
            "the captured state is dropped"
        );

        // A zero-sized value with a destructor is not leaked: its destructor must run.
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {}
        }
        let guard = Guard;
        let with_drop = boxed_disconnect(move |_: SocketRef| {
            let _ = &guard;
        });
        assert!(matches!(with_drop, Callback::Counted(_)));
    }
}
