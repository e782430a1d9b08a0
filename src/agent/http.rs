//! The HTTP routes and their JSON answers.
//!
//! Every answer carries `Cache-Control: no-store` and `Connection: close`. A document
//! body is handed to hyper as a `Bytes` that *owns* the zeroizing buffer (or the
//! `Plaintext` itself), so the only copy outside our control is hyper's write buffer,
//! freed when the connection closes right after.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::delivery::{Delivery, Take};
use super::{DocFormat, Peer};
use crate::Plaintext;
use crate::failure::Hinted;
use crate::format::{self, FetchFormat};

type SocketReply = Response<Full<Bytes>>;

/// What one connection knows: who is at the other end and what it has been given.
pub(crate) struct Connection {
    peer: Peer,
    allowed: bool,
    delivery: Arc<Delivery>,
    deliveries: AtomicU32,
}

impl Connection {
    pub(crate) fn new(peer: Peer, allowed: bool, delivery: Arc<Delivery>) -> Connection {
        Connection {
            peer,
            allowed,
            delivery,
            deliveries: AtomicU32::new(0),
        }
    }

    /// Deliveries committed on this connection.
    pub(crate) fn deliveries(&self) -> u32 {
        self.deliveries.load(Ordering::SeqCst)
    }
}

/// How the document is asked for: `?format=json|raw|dotenv`, or `None` (no `format`)
/// for the document as it is. An unknown value comes back, shortened, as the error.
fn wanted(query: Option<&str>) -> Result<Option<FetchFormat>, String> {
    let mut want = None;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "format" {
            want = Some(
                FetchFormat::from_query(value)
                    .ok_or_else(|| value.chars().take(32).collect::<String>())?,
            );
        }
    }
    Ok(want)
}

/// The hyper service: one request in, one answer out.
pub(crate) async fn handle<B>(
    conn: Arc<Connection>,
    request: Request<B>,
) -> Result<SocketReply, Infallible> {
    // Only the head is needed; dropping the body now keeps the future `Send`.
    let (head, body) = request.into_parts();
    drop(body);
    if !conn.allowed {
        audit(&conn, Served::Refused, None, head.uri.path());
        return Ok(error(
            StatusCode::FORBIDDEN,
            &format!(
                "peer uid {} gid {} is not allowed to use this agent",
                conn.peer.uid, conn.peer.gid
            ),
            &format!(
                "start the agent with --allow-uid {} (or --allow-gid {})",
                conn.peer.uid, conn.peer.gid
            ),
        ));
    }
    let answer = match head.uri.path() {
        "/v1/secret" if head.method == Method::GET => secret(&conn, head.uri.query()).await,
        "/v1/status" if head.method == Method::GET => status(&conn),
        path @ ("/v1/secret" | "/v1/status") => {
            let mut answer = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "method {} is not allowed on {path}",
                    short(head.method.as_str())
                ),
                "use GET",
            );
            answer
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
            answer
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "no such endpoint",
            "the agent serves GET /v1/secret (?format=json|raw|dotenv) and GET /v1/status",
        ),
    };
    Ok(answer)
}

fn status(conn: &Connection) -> SocketReply {
    match serde_json::to_vec(&conn.delivery.status()) {
        Ok(body) => respond(StatusCode::OK, "application/json", Bytes::from(body)),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the status: {e}"),
            "this is a bug in secret-zero",
        ),
    }
}

async fn secret(conn: &Connection, query: Option<&str>) -> SocketReply {
    let delivery = &conn.delivery;
    let want = match wanted(query) {
        Ok(want) => want,
        Err(value) => {
            audit(conn, Served::Error, None, "unknown format");
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown format {value:?}"),
                "use ?format=json, ?format=raw or ?format=dotenv",
            );
        }
    };
    if delivery.format() == DocFormat::Raw
        && matches!(want, Some(FetchFormat::Json | FetchFormat::Dotenv))
    {
        audit(conn, Served::Error, None, "raw document asked for as JSON");
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the agent serves raw bytes, not a JSON document",
            "ask for ?format=raw (secret-zero get --format raw)",
        );
    }
    let mut slot = match delivery.take() {
        Take::Slot(slot) => slot,
        Take::NotReady => {
            audit(conn, Served::NotReady, None, "");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready",
                "the agent is still logging in and decrypting; retry shortly, or wait until \
                 `secret-zero probe` succeeds",
            );
        }
        Take::Failed(reason) => {
            audit(conn, Served::NotReady, None, "agent failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the agent failed to start: {reason}"),
                "see the agent's log; the pod needs fixing and a restart",
            );
        }
        Take::Gone { delivered } => {
            audit(conn, Served::Gone, None, "");
            return error(
                StatusCode::GONE,
                &format!("no delivery left: {delivered} of {} made", delivery.max()),
                "each decrypted copy is delivered at most --max-deliveries times; restart the \
                 pod for a new one",
            );
        }
    };
    let copy = match slot.obtain().await {
        Ok(copy) => copy,
        Err(e) => {
            // The slot is released as it drops: nothing was delivered.
            let line = e.one_line();
            audit(conn, Served::Error, None, &line);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("could not obtain a fresh copy: {e}"),
                &e.hint()
                    .unwrap_or_else(|| "retry shortly; see the agent's log".into()),
            );
        }
    };
    let (body, content_type) = match want {
        Some(FetchFormat::Dotenv) => match format::dotenv(copy.expose()) {
            Ok(lines) => {
                drop(copy);
                (
                    Bytes::from_owner(PlainBody(lines)),
                    "text/plain; charset=utf-8",
                )
            }
            Err(e) => {
                slot.give_back(copy);
                audit(conn, Served::Error, None, &e.to_string());
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("cannot render the document as dotenv: {e}"),
                    &e.hint(),
                );
            }
        },
        None | Some(FetchFormat::Json | FetchFormat::Raw) => {
            let content_type = match delivery.format() {
                DocFormat::Json => "application/json",
                DocFormat::Raw => "application/octet-stream",
            };
            (Bytes::from_owner(PlainBody(copy)), content_type)
        }
    };
    let number = slot.commit();
    conn.deliveries.fetch_add(1, Ordering::SeqCst);
    audit(conn, Served::Delivered, Some(number), "");
    respond(StatusCode::OK, content_type, body)
}

/// A `Plaintext` as a response body: wiped when hyper drops the last reference.
struct PlainBody(Plaintext);

impl AsRef<[u8]> for PlainBody {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> SocketReply {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    answer
}

/// `{"error": ..., "hint": ...}` with `status`.
fn error(status: StatusCode, message: &str, hint: &str) -> SocketReply {
    let body = serde_json::json!({ "error": message, "hint": hint });
    respond(status, "application/json", Bytes::from(body.to_string()))
}

fn short(s: &str) -> String {
    s.chars().take(32).collect()
}

#[derive(Clone, Copy)]
enum Served {
    Delivered,
    Refused,
    Gone,
    NotReady,
    Error,
}

impl Served {
    fn as_str(self) -> &'static str {
        match self {
            Served::Delivered => "delivered",
            Served::Refused => "refused",
            Served::Gone => "gone",
            Served::NotReady => "not-ready",
            Served::Error => "error",
        }
    }
}

/// One audit line per request for the secret, and per refused request of any kind.
/// Never plaintext: only the peer, the outcome and the key version.
fn audit(conn: &Connection, outcome: Served, delivery: Option<u32>, detail: &str) {
    let peer = &conn.peer;
    let key_version = conn.delivery.key_version();
    let max = conn.delivery.max();
    let detail = (!detail.is_empty()).then_some(detail);
    match outcome {
        Served::Delivered => tracing::info!(
            target: "secret_zero::audit",
            outcome = outcome.as_str(),
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            peer_gid = peer.gid,
            key_version,
            delivery,
            max_deliveries = max,
            "secret delivered"
        ),
        Served::Refused => tracing::warn!(
            target: "secret_zero::audit",
            outcome = outcome.as_str(),
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            peer_gid = peer.gid,
            key_version,
            path = detail.map(short),
            "peer refused"
        ),
        Served::Gone | Served::NotReady | Served::Error => tracing::warn!(
            target: "secret_zero::audit",
            outcome = outcome.as_str(),
            peer_pid = peer.pid,
            peer_uid = peer.uid,
            peer_gid = peer.gid,
            key_version,
            detail,
            "secret not delivered"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_query() {
        assert_eq!(wanted(None), Ok(None));
        assert_eq!(wanted(Some("format=dotenv")), Ok(Some(FetchFormat::Dotenv)));
        assert_eq!(wanted(Some("x=1&format=raw")), Ok(Some(FetchFormat::Raw)));
        assert_eq!(wanted(Some("format=json")), Ok(Some(FetchFormat::Json)));
        assert_eq!(wanted(Some("format=yaml")), Err("yaml".into()));
    }
}
