//! `secret-zero webhook`: the injection of [`crate::inject`] as a mutating admission
//! webhook (`admission.k8s.io/v1`), over HTTPS.
//!
//! - [`review`]: AdmissionReview in, AdmissionReview with a JSONPatch out (pure).
//! - [`tls`]: the serving certificate, reloaded when cert-manager rotates it.
//! - [`metrics`]: reviews, latency and certificate reloads, for Prometheus.
//! - this module: the HTTPS server, its routes (`/mutate`, `/healthz`, `/readyz`),
//!   the body size limit, one log line per review, graceful shutdown; and the plain
//!   HTTP server of `GET /metrics` on its own port, stopped with it.

pub mod metrics;
pub mod review;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::inject::Options;
pub use metrics::{Metrics, Outcome};
pub use tls::{CertFiles, TlsError};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may wait for (the whole head of) its next request. hyper
/// counts idle keep-alive time in it, so it must outlast the API server's own idle
/// timeout (Go's 90 s): the client, not us, should close an idle connection, or a
/// review sent just as we close it would fail.
const HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a client may take to send a whole body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an oversized body is read and discarded, so the client sees the 413
/// instead of a reset; beyond this the connection is simply closed.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;
/// How long requests in flight may take to finish at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Certificate and key files, re-read when they change.
    pub tls: CertFiles,
    /// How often the certificate files are checked for changes.
    pub reload_interval: Duration,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// After SIGTERM, how long to keep serving while `/readyz` fails, so that the
    /// Service stops sending requests here before the listener closes.
    pub drain_delay: Duration,
    /// The injection's defaults (image, Vault address, legacy sidecar).
    pub options: Options,
    /// Address of the plain-HTTP `/metrics` endpoint; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook: {0}")]
    Tls(#[from] TlsError),
    #[error("webhook: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("webhook: cannot serve metrics on {addr}: {source}")]
    MetricsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl WebhookError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            WebhookError::Tls(_) => "give --tls-cert a PEM chain (leaf first) and --tls-key its PEM private key (cert-manager's tls.crt and tls.key)".into(),
            WebhookError::Listen { .. } => "choose a free address with --listen (a port above 1024 when not root)".into(),
            WebhookError::MetricsListen { .. } => "choose a free address with --metrics-listen, or --metrics-listen off to serve no metrics".into(),
        }
    }
}

struct State {
    options: Options,
    max_body_bytes: usize,
    ready: AtomicBool,
    metrics: Arc<Metrics>,
}

/// A bound server, ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    drain_delay: Duration,
}

impl Server {
    /// Load the certificate, start watching its files, and bind the listener.
    pub async fn bind(config: Config) -> Result<Server, WebhookError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let resolver = tls::ReloadingCert::load(&config.tls, Arc::clone(&provider))?;
        let server_config = tls::server_config(Arc::clone(&resolver), provider)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| WebhookError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| WebhookError::MetricsListen { addr, source })?,
            ),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        metrics.certificate_loaded(resolver.not_after());
        resolver.spawn_reloader(
            config.tls.clone(),
            config.reload_interval,
            Arc::clone(&metrics),
        );
        Ok(Server {
            listener,
            metrics_listener,
            acceptor: TlsAcceptor::from(server_config),
            state: Arc::new(State {
                options: config.options,
                max_body_bytes: config.max_body_bytes,
                ready: AtomicBool::new(true),
                metrics,
            }),
            drain_delay: config.drain_delay,
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the `/metrics` endpoint actually bound, if it is served.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics_listener.as_ref().map(TcpListener::local_addr)
    }

    /// Serve until `shutdown` completes; then fail `/readyz` for the drain delay while
    /// still serving, stop accepting, and let requests in flight finish.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        let mut drain_until: Option<tokio::time::Instant> = None;
        loop {
            let drained = async {
                match drain_until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let acceptor = self.acceptor.clone();
                        let state = Arc::clone(&self.state);
                        let watcher = graceful.watcher();
                        tokio::spawn(async move {
                            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => tls,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, "webhook: TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "webhook: TLS handshake timed out");
                                    return;
                                }
                            };
                            let service = service_fn(move |request| handle(Arc::clone(&state), request));
                            let connection = hyper::server::conn::http1::Builder::new()
                                .timer(TokioTimer::new())
                                .header_read_timeout(HEADER_TIMEOUT)
                                .serve_connection(TokioIo::new(tls), service);
                            if let Err(e) = watcher.watch(connection).await {
                                tracing::debug!(%peer, "webhook: connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!("webhook: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                accepted = accept(self.metrics_listener.as_ref()) => match accepted {
                    Ok((stream, peer)) => {
                        let metrics = Arc::clone(&self.state.metrics);
                        let service = service_fn(move |request| serve_metrics(Arc::clone(&metrics), request));
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service);
                        let watched = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(e) = watched.await {
                                tracing::debug!(%peer, "webhook: metrics connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("webhook: accept on the metrics port failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = &mut shutdown, if drain_until.is_none() => {
                    self.state.ready.store(false, Ordering::SeqCst);
                    tracing::info!(
                        "webhook: shutting down; /readyz fails, still serving for {}",
                        humantime::format_duration(self.drain_delay)
                    );
                    drain_until = Some(tokio::time::Instant::now() + self.drain_delay);
                }
                () = drained => break,
            }
        }
        drop(self.listener);
        drop(self.metrics_listener);
        let open = graceful.count();
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("webhook: some of {open} connections did not finish in time");
        }
        tracing::info!("webhook: stopped");
    }
}

/// The next connection on `listener`; never, without one.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

type HttpsReply = Response<Full<Bytes>>;

/// The metrics port: `GET /metrics`, nothing else.
async fn serve_metrics(
    metrics: Arc<Metrics>,
    request: Request<Incoming>,
) -> Result<HttpsReply, Infallible> {
    let answer = match (request.uri().path(), request.method()) {
        ("/metrics", &Method::GET) => respond(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            metrics.encode().into_bytes(),
        ),
        ("/metrics", _) => not_allowed("GET"),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint",
            "the metrics port serves GET /metrics",
        ),
    };
    Ok(answer)
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<HttpsReply, Infallible> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let answer = match (path.as_str(), &method) {
        ("/healthz", &Method::GET) => plain(StatusCode::OK, "ok"),
        ("/readyz", &Method::GET) if state.ready.load(Ordering::SeqCst) => {
            plain(StatusCode::OK, "ok")
        }
        ("/readyz", &Method::GET) => plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        ("/mutate", &Method::POST) => mutate(&state, request).await,
        ("/healthz" | "/readyz", _) => not_allowed("GET"),
        ("/mutate", _) => not_allowed("POST"),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint",
            "the webhook serves POST /mutate, GET /healthz and GET /readyz",
        ),
    };
    Ok(answer)
}

async fn mutate(state: &State, request: Request<Incoming>) -> HttpsReply {
    let started = Instant::now();
    let (answer, outcome, namespace) = answer_review(state, request, started).await;
    state.metrics.review(outcome, &namespace, started.elapsed());
    answer
}

/// The answer to one request to `/mutate`, how it ended, and the review's namespace
/// (empty when the body was not a review).
async fn answer_review(
    state: &State,
    request: Request<Incoming>,
    started: Instant,
) -> (HttpsReply, Outcome, String) {
    let failed = |answer: HttpsReply| (answer, Outcome::Error, String::new());
    let limit = state.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        read_body(request.into_body(), limit, declared),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => {
            tracing::warn!(
                outcome = "refused",
                ms = elapsed_ms(started),
                "webhook: review refused: body larger than {limit} bytes"
            );
            let mut answer = error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {limit} bytes"),
                "raise --max-request-bytes if pods this large are expected",
            );
            answer.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return failed(answer);
        }
        Ok(Err(BodyError::Read(e))) => {
            tracing::warn!(
                outcome = "refused",
                "webhook: cannot read the request body: {e}"
            );
            return failed(error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
                "send an AdmissionReview",
            ));
        }
        Err(_) => {
            tracing::warn!(
                outcome = "refused",
                "webhook: the request body did not arrive in time"
            );
            return failed(error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
                "send the whole AdmissionReview at once",
            ));
        }
    };
    match review::review(&body, &state.options) {
        Ok(answer) => {
            let name = if answer.name.is_empty() {
                "(unnamed)"
            } else {
                &answer.name
            };
            let operations = match answer.outcome {
                review::Decision::Patched(n) => n,
                _ => 0,
            };
            tracing::info!(
                uid = %answer.uid,
                namespace = %answer.namespace,
                name = %name,
                dry_run = answer.dry_run,
                outcome = %answer.outcome,
                operations,
                reason = answer.message.as_deref(),
                ms = elapsed_ms(started),
                "review"
            );
            let body = serde_json::to_vec(&answer.review).unwrap_or_default();
            (
                respond(StatusCode::OK, "application/json", body),
                Outcome::from(&answer.outcome),
                answer.namespace,
            )
        }
        Err(malformed) => {
            tracing::warn!(
                outcome = "malformed",
                ms = elapsed_ms(started),
                "webhook: review refused: {malformed}"
            );
            failed(error(
                StatusCode::BAD_REQUEST,
                &malformed.0,
                "POST an admission.k8s.io/v1 AdmissionReview with a request and its uid",
            ))
        }
    }
}

enum BodyError {
    TooLarge,
    Read(hyper::Error),
}

/// Read the body up to `limit` bytes. An oversized one is still read (and dropped) up
/// to [`DISCARD_LIMIT`], so the client gets to read the 413 rather than a reset.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, BodyError> {
    let too_large = declared.is_some_and(|n| n > limit as u64);
    if declared.is_some_and(|n| n > DISCARD_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(if too_large {
        0
    } else {
        declared.map_or(8 * 1024, |n| n as usize)
    });
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > DISCARD_LIMIT {
                return Err(BodyError::TooLarge);
            }
            if !too_large && seen <= limit {
                bytes.extend_from_slice(&data);
            }
        }
    }
    if too_large || seen > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(bytes)
}

fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> HttpsReply {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    answer
}

fn plain(status: StatusCode, text: &'static str) -> HttpsReply {
    respond(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
}

fn error(status: StatusCode, message: &str, hint: &str) -> HttpsReply {
    let body = serde_json::to_vec(&json!({"error": message, "hint": hint})).unwrap_or_default();
    respond(status, "application/json", body)
}

fn not_allowed(allow: &'static str) -> HttpsReply {
    let mut answer = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        &format!("use {allow}"),
    );
    answer
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    answer
}
