//! The socket server: HTTP/1.1 over a Unix socket that hands the plaintext out at most
//! `max_deliveries` times, to allowed peers only (ARCHITECTURE.md, I7 and I8).
//!
//! - [`socket`] binds a path (mode set before the file is reachable, stale files
//!   replaced, live agents respected, removal on drop) or an abstract name;
//! - [`peer`] is the `SO_PEERCRED` policy;
//! - [`delivery`] is the state and the one-shot accounting;
//! - [`http`] the routes and their JSON errors;
//! - [`conns`] what connections may cost: the cap, making room, the fixed answers
//!   written at accept, and the moment a delivery counts (docs/socket-limits.md).
//!
//! The caller binds first (so a bad socket fails before any Vault call), spawns
//! [`Agent::serve`], and then reports the outcome of login/decrypt through the
//! [`StatusHandle`].

mod conns;
mod delivery;
mod http;
mod peer;
mod socket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::task::JoinSet;

use crate::Plaintext;
use crate::env;
use crate::failure::InputError;
use crate::fault::Fault;

pub use delivery::StatusHandle;
pub use peer::{Peer, PeerPolicy};
pub use secret_zero_client::{AgentState, AgentStatus, DocFormat, SocketSpec};

/// How long one connection may last, request and answer included: room for a later
/// delivery's fresh login and decrypt (retried for up to `--retry-timeout`). A client
/// that never sends its request is closed much sooner, by the header-read timeout.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(env::SOCKET_CONNECTION_TIMEOUT_SECS);

/// How long to wait before accepting again after `accept` failed (out of descriptors or
/// memory) and no connection could be closed to free one; when one could, the loop
/// waits for it to close instead (at most 100 ms).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the socket's connections may cost (docs/socket-limits.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections of allowed peers open at once (`--max-connections`), lowered at
    /// bind to fit the open-file limit.
    pub max_connections: usize,
    /// How long a connection may take to send its request head
    /// (`--header-read-timeout`).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: env::DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: humantime::parse_duration(env::DEFAULT_HEADER_READ_TIMEOUT)
                .expect("the default header-read timeout parses"),
        }
    }
}

/// Everything the agent needs to know before the plaintext exists.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub socket: SocketSpec,
    /// Mode of the socket file (ignored for abstract sockets). Connecting needs write
    /// permission, so `0600` admits the agent's own uid (and root) only.
    pub socket_mode: u32,
    pub policy: PeerPolicy,
    /// At most this many deliveries (at least 1).
    pub max_deliveries: u32,
    /// Return from `serve` once the last delivery has been written.
    pub exit_after_delivery: bool,
    pub format: DocFormat,
    /// Shown in `/v1/status` and the audit lines; usually unknown at bind time and set
    /// later with [`StatusHandle::set_key_version`].
    pub key_version: Option<u64>,
    /// What connections may cost.
    pub limits: Limits,
}

impl Default for AgentConfig {
    /// The documented defaults: the default socket, mode 0600, own uid only, one
    /// delivery, stay up afterwards, JSON.
    fn default() -> AgentConfig {
        AgentConfig {
            socket: SocketSpec::default(),
            socket_mode: 0o600,
            policy: PeerPolicy::default(),
            max_deliveries: 1,
            exit_after_delivery: false,
            format: DocFormat::Json,
            key_version: None,
            limits: Limits::default(),
        }
    }
}

/// Produces a fresh copy for deliveries after the first (a new login + decrypt + revoke
/// each time). Nothing is kept between deliveries: each call starts from scratch.
pub trait Source: Send + Sync + 'static {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>>;
}

/// A failure of the agent's settings or of the socket itself.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting the agent cannot work with (`--max-deliveries 0`, a bad mode).
    #[error(transparent)]
    Config(InputError),

    /// The socket could not be bound: directory missing or not writable, a live agent
    /// already on it, a path that is not a socket, a name too long.
    #[error("cannot bind socket {socket}: {reason}")]
    Bind {
        socket: String,
        reason: String,
        hint: String,
    },

    /// The bound listener could not be used.
    #[error("socket {socket}: {reason}")]
    Listen { socket: String, reason: String },
}

impl AgentError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AgentError::Config(e) => Some(e.hint.clone()),
            AgentError::Bind { hint, .. } => Some(hint.clone()),
            AgentError::Listen { .. } => None,
        }
    }
}

/// A bound socket and the delivery state behind it.
pub struct Agent {
    listener: std::os::unix::net::UnixListener,
    /// Removes the socket file when the agent goes away (path sockets only).
    file: Option<socket::SocketFile>,
    socket: SocketSpec,
    policy: PeerPolicy,
    delivery: Arc<delivery::Delivery>,
    limits: Limits,
}

impl Agent {
    /// Bind the socket now, in state "starting". Needs no runtime, so it can run before
    /// anything else. Errors are one line naming the socket, with exit code `SOCKET`.
    pub fn bind(config: AgentConfig) -> Result<Agent, AgentError> {
        if config.max_deliveries == 0 {
            return Err(AgentError::Config(InputError::new(
                "--max-deliveries must be at least 1",
                "use 1 (the default) for a single delivery",
            )));
        }
        if config.socket_mode & !0o777 != 0 {
            return Err(AgentError::Config(InputError::new(
                format!(
                    "--socket-mode {:o} is not a permission mode",
                    config.socket_mode
                ),
                "give an octal mode such as 0600 or 0660",
            )));
        }
        if config.limits.max_connections == 0 {
            return Err(AgentError::Config(InputError::new(
                "--max-connections must be at least 1",
                format!(
                    "use {} (the default); one application needs one",
                    env::DEFAULT_MAX_CONNECTIONS
                ),
            )));
        }
        if config.limits.header_read_timeout.is_zero() {
            return Err(AgentError::Config(InputError::new(
                "--header-read-timeout must be longer than 0",
                format!("use {} (the default)", env::DEFAULT_HEADER_READ_TIMEOUT),
            )));
        }
        let limits = Limits {
            max_connections: conns::fit_to_open_files(config.limits.max_connections),
            ..config.limits
        };
        let bound = socket::bind(&config.socket, config.socket_mode)?;
        let own_uid = rustix::process::geteuid().as_raw();
        match &config.socket {
            SocketSpec::Path(_) => tracing::info!(
                socket = %config.socket,
                mode = format_args!("{:04o}", config.socket_mode),
                peers = %config.policy.describe(own_uid),
                max_deliveries = config.max_deliveries,
                max_connections = limits.max_connections,
                "socket bound"
            ),
            SocketSpec::Abstract(_) => tracing::info!(
                socket = %config.socket,
                peers = %config.policy.describe(own_uid),
                max_deliveries = config.max_deliveries,
                max_connections = limits.max_connections,
                "abstract socket bound: it has no file mode, any process in this network \
                 namespace can connect, and only the peer policy decides"
            ),
        }
        Ok(Agent {
            listener: bound.listener,
            file: bound.file,
            socket: config.socket,
            policy: config.policy,
            delivery: Arc::new(delivery::Delivery::new(
                config.max_deliveries,
                config.exit_after_delivery,
                config.format,
                config.key_version,
            )),
            limits,
        })
    }

    /// The handle through which the caller marks the agent ready or failed.
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle::new(self.delivery.clone())
    }

    /// The socket this agent listens on.
    pub fn socket(&self) -> &SocketSpec {
        &self.socket
    }

    /// Serve until `shutdown` resolves, or (with `exit_after_delivery`) until the last
    /// delivery has been written. On return the plaintext is wiped, open connections
    /// are dropped and the socket file is removed.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let Agent {
            listener,
            file,
            socket,
            policy,
            delivery,
            limits,
        } = self;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| AgentError::Listen {
                socket: socket.to_string(),
                reason: e.to_string(),
            })?;
        let mut accepting = Accepting {
            policy,
            own_uid: rustix::process::geteuid().as_raw(),
            delivery: delivery.clone(),
            limits,
            registry: conns::Registry::new(limits.max_connections),
            lingering: Arc::new(AtomicUsize::new(0)),
            tasks: JoinSet::new(),
        };
        let mut failures = AcceptFailures::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(socket = %socket, "shutting down");
                    break;
                }
                () = delivery.finished() => {
                    tracing::info!(socket = %socket, "all deliveries made; exiting as asked");
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => accepting.take(stream).await,
                    Err(e) => {
                        // Out of descriptors or memory: say so (once a minute), free a
                        // descriptor held by a client that has not spoken, and back off
                        // rather than spin.
                        failures.failed(&socket, &e);
                        match accepting.registry.evict_oldest_idle() {
                            Some(closing) => closing.wait().await,
                            None => tokio::time::sleep(ACCEPT_BACKOFF).await,
                        }
                    }
                },
                Some(joined) = accepting.tasks.join_next() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        tracing::error!(error = %e, "a connection handler panicked");
                    }
                }
            }
        }
        accepting.tasks.shutdown().await;
        delivery.wipe();
        drop(listener);
        drop(file);
        Ok(())
    }
}

/// How often a failing `accept` is logged: at most once a minute, with the count.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

/// `accept` failures since the last line about them.
#[derive(Default)]
struct AcceptFailures {
    logged: Option<std::time::Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    fn failed(&mut self, socket: &SocketSpec, e: &std::io::Error) {
        self.unlogged += 1;
        if self
            .logged
            .is_some_and(|at| at.elapsed() < ACCEPT_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            socket = %socket,
            error = %e,
            failures = self.unlogged,
            "accept failed; closing the oldest connection that has not sent its request and \
             backing off (logged at most once a minute)"
        );
        self.logged = Some(std::time::Instant::now());
        self.unlogged = 0;
    }
}

/// What the accept loop needs for each new connection.
struct Accepting {
    policy: PeerPolicy,
    own_uid: u32,
    delivery: Arc<delivery::Delivery>,
    limits: Limits,
    registry: Arc<conns::Registry>,
    /// Fixed answers (refusals, "too many") still lingering.
    lingering: Arc<AtomicUsize>,
    tasks: JoinSet<()>,
}

impl Accepting {
    /// Decide at accept: a refused peer gets its fixed 403 before anything is read; an
    /// allowed one a place among the open connections (or a fixed 503 when every place
    /// is answering a request). When a connection was closed to make room, wait until
    /// its descriptor is free before accepting more, so descriptors never pile up.
    async fn take(&mut self, stream: tokio::net::UnixStream) {
        let peer = match Peer::of(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the peer's credentials; closing");
                return;
            }
        };
        if !self.policy.allows(&peer, self.own_uid) {
            http::audit_refused(&peer, &self.delivery);
            self.tasks.spawn(conns::answer_and_close(
                stream,
                http::refusal(&peer),
                self.lingering.clone(),
            ));
            return;
        }
        match self.registry.admit() {
            Ok((ticket, closing)) => {
                let id = ticket.id();
                let ctx = Arc::new(http::Connection::new(
                    peer,
                    ticket.stage(),
                    self.delivery.clone(),
                ));
                let io = conns::Tracked::new(stream, ticket, ctx.clone());
                let abort =
                    self.tasks
                        .spawn(connection(io, ctx, self.delivery.clone(), self.limits));
                self.registry.track(id, abort);
                if let Some(closing) = closing {
                    closing.wait().await;
                }
            }
            Err(full) => {
                tracing::warn!(peer = %peer, open = full.open, "too many connections; answered 503");
                self.tasks.spawn(conns::answer_and_close(
                    stream,
                    http::too_many(full.open),
                    self.lingering.clone(),
                ));
            }
        }
    }
}

/// One connection of an allowed peer: answer its one HTTP/1.1 request and close (every
/// answer closes: no idle connection keeps buffers).
async fn connection(
    io: conns::Tracked,
    ctx: Arc<http::Connection>,
    delivery: Arc<delivery::Delivery>,
    limits: Limits,
) {
    let service = {
        let ctx = ctx.clone();
        hyper::service::service_fn(move |request| http::handle(ctx.clone(), request))
    };
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(env::SOCKET_MAX_HEADER_BYTES)
        .max_headers(env::SOCKET_MAX_HEADERS)
        .serve_connection(TokioIo::new(io), service);
    let flushed = match tokio::time::timeout(CONNECTION_TIMEOUT, served).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(peer = %ctx.peer(), error = %e, "connection ended with an error");
            false
        }
        Err(_) => {
            tracing::debug!(peer = %ctx.peer(), "connection timed out");
            false
        }
    };
    ctx.settle(flushed);
    delivery.connection_closed(ctx.deliveries());
}

/// Serve one connection over `io` as the accept loop and [`connection`] do, to a peer
/// that `allowed` or not, from an agent ready with `first` (and `source` for later
/// copies): for the fuzz targets. Returns what `/v1/status` says afterwards.
#[doc(hidden)]
pub async fn serve_io<I>(
    mut io: I,
    allowed: bool,
    config: &AgentConfig,
    first: Plaintext,
    source: Option<Arc<dyn Source>>,
) -> AgentStatus
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::AsyncWriteExt;
    let delivery = Arc::new(delivery::Delivery::new(
        config.max_deliveries,
        false,
        config.format,
        None,
    ));
    StatusHandle::new(delivery.clone()).ready(first, source);
    let peer = Peer {
        pid: None,
        uid: 4242,
        gid: 4242,
    };
    if !allowed {
        // As at accept: the fixed answer, nothing read.
        http::audit_refused(&peer, &delivery);
        let _ = io.write_all(&http::refusal(&peer)).await;
        let _ = io.shutdown().await;
        return delivery.status();
    }
    let ctx = Arc::new(http::Connection::new(
        peer,
        Arc::new(conns::Stage::new()),
        delivery.clone(),
    ));
    let service = {
        let ctx = ctx.clone();
        hyper::service::service_fn(move |request| http::handle(ctx.clone(), request))
    };
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_header_size(env::SOCKET_MAX_HEADER_BYTES)
        .max_headers(env::SOCKET_MAX_HEADERS)
        .serve_connection(TokioIo::new(io), service)
        .await;
    ctx.settle(served.is_ok());
    delivery.connection_closed(ctx.deliveries());
    delivery.status()
}
