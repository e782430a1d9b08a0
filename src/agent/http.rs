//! The HTTP routes and their JSON answers.
//!
//! Every answer carries `Cache-Control: no-store` and `Connection: close`. A document
//! body is handed to hyper as a `Bytes` that *owns* the zeroizing buffer (or the
//! `Plaintext` itself), so the only copy outside our control is hyper's write buffer,
//! freed when the connection closes right after.
//!
//! A delivery is *pending* from the moment its answer is built until the kernel has
//! taken a byte of its body ([`Connection::body_written`], called by the connection's
//! writer): then it counts. A connection that ends before that (the client went away
//! first) gives the slot back, and the start-up copy with it (docs/socket-limits.md).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Body;

use super::conns::Stage;
use super::delivery::{Delivery, Slot, Take};
use super::{DocFormat, Peer};
use crate::Plaintext;
use crate::failure::Hinted;
use crate::format::{self, FetchFormat};

type SocketReply = Response<Full<Bytes>>;

/// What one connection knows: who is at the other end, what it has been given, and the
/// delivery whose answer is being written.
pub(crate) struct Connection {
    peer: Peer,
    stage: Arc<Stage>,
    delivery: Arc<Delivery>,
    deliveries: AtomicU32,
    pending: Mutex<Option<Pending>>,
}

/// A delivery whose answer is built and not yet taken by the kernel.
struct Pending {
    slot: Slot,
    copy: Held,
}

/// The copy behind a pending answer, kept so that it can be given back.
enum Held {
    /// The answer's body is the copy itself (shared with hyper until it lets go).
    Body(Arc<Plaintext>),
    /// The body is a rendering (dotenv, one key); the copy waits here.
    Kept(Plaintext),
}

impl Connection {
    pub(crate) fn new(peer: Peer, stage: Arc<Stage>, delivery: Arc<Delivery>) -> Connection {
        Connection {
            peer,
            stage,
            delivery,
            deliveries: AtomicU32::new(0),
            pending: Mutex::new(None),
        }
    }

    pub(crate) fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Deliveries committed on this connection.
    pub(crate) fn deliveries(&self) -> u32 {
        self.deliveries.load(Ordering::SeqCst)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kernel has taken a byte of the answer's body: the pending delivery counts.
    pub(crate) fn body_written(&self) {
        let Some(Pending { slot, copy }) = self.pending().take() else {
            return;
        };
        let number = slot.commit();
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        audit(self, Served::Delivered, Some(number), "");
        // A kept copy is wiped now; a body copy when hyper drops its last reference.
        drop(copy);
    }

    /// The connection is over. `flushed`: hyper wrote the whole answer (an empty body
    /// never reaches [`body_written`](Self::body_written)). Otherwise a delivery still
    /// pending never reached the client: its slot, and the start-up copy, go back.
    pub(crate) fn settle(&self, flushed: bool) {
        if flushed {
            self.body_written();
            return;
        }
        let Some(Pending { slot, copy }) = self.pending().take() else {
            return;
        };
        audit(
            self,
            Served::Error,
            None,
            "the client went away before the answer was written; nothing consumed",
        );
        let copy = match copy {
            Held::Kept(copy) => Some(copy),
            Held::Body(shared) => Arc::try_unwrap(shared).ok(),
        };
        match copy {
            Some(copy) => slot.give_back(copy),
            None => {
                tracing::error!("a copy could not be taken back from the HTTP layer; it is wiped");
                drop(slot);
            }
        }
    }
}

/// The query of `GET /v1/secret`: `format=json|raw|dotenv` (`None`: the document as it
/// is) and `key=NAME` (one top-level value). Values are percent-decoded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    format: Option<FetchFormat>,
    key: Option<String>,
}

/// A query the agent cannot serve; the text is the error line, shortened values only.
#[derive(Debug, PartialEq, Eq)]
struct BadQuery(String);

fn query(text: Option<&str>) -> Result<Query, BadQuery> {
    let mut query = Query::default();
    for (name, value) in url::form_urlencoded::parse(text.unwrap_or("").as_bytes()) {
        match &*name {
            "format" => {
                query.format = Some(
                    FetchFormat::from_query(&value)
                        .ok_or_else(|| BadQuery(format!("unknown format {:?}", short(&value))))?,
                );
            }
            "key" if query.key.is_some() => {
                return Err(BadQuery("the query names key more than once".into()));
            }
            "key" => query.key = Some(value.into_owned()),
            _ => {}
        }
    }
    if query.key.is_some() && matches!(query.format, Some(FetchFormat::Dotenv | FetchFormat::Raw)) {
        return Err(BadQuery(
            "key= picks a value out of the JSON document: it goes with format=json or no format"
                .into(),
        ));
    }
    Ok(query)
}

/// The hyper service: one request in, one answer out. Only allowed peers get here (a
/// refused one is answered at accept, before anything is read).
pub(crate) async fn handle<B: Body>(
    conn: Arc<Connection>,
    request: Request<B>,
) -> Result<SocketReply, Infallible> {
    // Only the head is needed; dropping the body now keeps the future `Send`.
    let (head, body) = request.into_parts();
    let has_body = !body.is_end_stream();
    drop(body);
    if !conn.stage.start() {
        // Closed to make room while its head was arriving; this answer is never sent.
        return Ok(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the connection was closed to make room",
            "connect again",
        ));
    }
    if has_body {
        audit(&conn, Served::Error, None, "request with a body");
        return Ok(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the agent takes no request body",
            "send GET without a body",
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
            "the agent serves GET /v1/secret (?format=json|raw|dotenv, ?key=NAME) and GET \
             /v1/status",
        ),
    };
    Ok(answer)
}

/// The whole answer of a refused peer, written at accept before anything is read.
pub(crate) fn refusal(peer: &Peer) -> Vec<u8> {
    raw_answer(
        "403 Forbidden",
        &format!(
            "peer uid {} gid {} is not allowed to use this agent",
            peer.uid, peer.gid
        ),
        &format!(
            "start the agent with --allow-uid {} (or --allow-gid {})",
            peer.uid, peer.gid
        ),
    )
}

/// The whole answer of an allowed peer that finds every connection busy.
pub(crate) fn too_many(open: usize) -> Vec<u8> {
    raw_answer(
        "503 Service Unavailable",
        &format!("too many connections: {open} requests are being answered"),
        "retry shortly; raise --max-connections if this is expected",
    )
}

/// A complete HTTP/1.1 answer with a JSON error body, as [`error`] builds it.
fn raw_answer(status: &str, message: &str, hint: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": message, "hint": hint }).to_string();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
         x-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
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

async fn secret(conn: &Connection, query_text: Option<&str>) -> SocketReply {
    let delivery = &conn.delivery;
    let asked = match query(query_text) {
        Ok(asked) => asked,
        Err(BadQuery(line)) => {
            audit(conn, Served::Error, None, &line);
            return error(
                StatusCode::BAD_REQUEST,
                &line,
                "use ?format=json, ?format=raw or ?format=dotenv, or ?key=NAME",
            );
        }
    };
    if delivery.format() == DocFormat::Raw
        && (asked.key.is_some()
            || matches!(asked.format, Some(FetchFormat::Json | FetchFormat::Dotenv)))
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
    let rendered = match (&asked.key, asked.format) {
        (Some(key), _) => secret_zero_client::key_value_typed(copy.expose(), key).map(|value| {
            let content_type = if value.is_string {
                "text/plain; charset=utf-8"
            } else {
                "application/json"
            };
            Some((value.value, content_type))
        }),
        (None, Some(FetchFormat::Dotenv)) => {
            format::dotenv(copy.expose()).map(|lines| Some((lines, "text/plain; charset=utf-8")))
        }
        (None, None | Some(FetchFormat::Json | FetchFormat::Raw)) => Ok(None),
    };
    let (body, content_type, held) = match rendered {
        Ok(Some((rendering, content_type))) => (
            Bytes::from_owner(PlainBody(rendering)),
            content_type,
            Held::Kept(copy),
        ),
        Ok(None) => {
            let content_type = match delivery.format() {
                DocFormat::Json => "application/json",
                DocFormat::Raw => "application/octet-stream",
            };
            let shared = Arc::new(copy);
            (
                Bytes::from_owner(SharedBody(shared.clone())),
                content_type,
                Held::Body(shared),
            )
        }
        Err(e) => {
            // Checked before anything is committed: the copy and the slot go back.
            slot.give_back(copy);
            audit(conn, Served::Error, None, &e.to_string());
            let what = match asked.key {
                Some(_) => "cannot answer the key",
                None => "cannot render the document as dotenv",
            };
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{what}: {e}"),
                &e.hint(),
            );
        }
    };
    *conn.pending() = Some(Pending { slot, copy: held });
    let mut answer = respond(StatusCode::OK, content_type, body);
    if asked.key.is_some() {
        // Tells the client the value was picked here (an older agent sends the document).
        answer.headers_mut().insert(
            secret_zero_client::KEY_ANSWER_HEADER,
            header::HeaderValue::from_static("key"),
        );
    }
    answer
}

/// A `Plaintext` as a response body: wiped when hyper drops the last reference.
struct PlainBody(Plaintext);

impl AsRef<[u8]> for PlainBody {
    fn as_ref(&self) -> &[u8] {
        self.0.expose()
    }
}

/// The copy itself as a response body, shared so that it can be given back when the
/// answer never reached the client.
struct SharedBody(Arc<Plaintext>);

impl AsRef<[u8]> for SharedBody {
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

/// The audit line of a peer refused at accept (its request is never read).
pub(crate) fn audit_refused(peer: &Peer, delivery: &Delivery) {
    audit_line(peer, delivery, Served::Refused, None, "");
}

/// One audit line per request for the secret, and per refused connection. Never
/// plaintext: only the peer, the outcome and the key version.
fn audit(conn: &Connection, outcome: Served, delivery: Option<u32>, detail: &str) {
    audit_line(&conn.peer, &conn.delivery, outcome, delivery, detail);
}

fn audit_line(peer: &Peer, state: &Delivery, outcome: Served, delivery: Option<u32>, detail: &str) {
    let key_version = state.key_version();
    let max = state.max();
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
            "peer refused at accept; its request is not read"
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
    fn format_and_key_query() {
        let format = |f| Query {
            format: Some(f),
            key: None,
        };
        assert_eq!(query(None), Ok(Query::default()));
        assert_eq!(
            query(Some("format=dotenv")),
            Ok(format(FetchFormat::Dotenv))
        );
        assert_eq!(query(Some("x=1&format=raw")), Ok(format(FetchFormat::Raw)));
        assert_eq!(query(Some("format=json")), Ok(format(FetchFormat::Json)));
        assert_eq!(
            query(Some("format=yaml")),
            Err(BadQuery("unknown format \"yaml\"".into()))
        );
        assert_eq!(
            query(Some("key=db%20pass%2Bword&format=json")),
            Ok(Query {
                format: Some(FetchFormat::Json),
                key: Some("db pass+word".into())
            })
        );
        assert!(query(Some("key=a&key=b")).is_err());
        assert!(query(Some("key=a&format=dotenv")).is_err());
        assert!(query(Some("format=raw&key=a")).is_err());
    }

    #[test]
    fn fixed_answers_are_whole_http_answers() {
        let peer = Peer {
            pid: Some(7),
            uid: 1234,
            gid: 5678,
        };
        let answer = String::from_utf8(refusal(&peer)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["hint"].as_str().unwrap().contains("--allow-uid 1234"));
        assert!(
            String::from_utf8(too_many(3))
                .unwrap()
                .starts_with("HTTP/1.1 503 ")
        );
    }
}
