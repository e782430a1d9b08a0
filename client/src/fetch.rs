//! The client side of the agent's socket, used by `get`, `probe` and applications.
//!
//! One small HTTP/1.1 exchange per call: `GET` with `Connection: close`, then the answer
//! read into a [`PlaintextBuf`] (it grows without leaving copies behind) and cut at
//! `Content-Length` (or at end of stream). Hand-written rather than a pooled HTTP client
//! so that every byte of the answer is in a buffer we wipe. The blocking variants use
//! std sockets and need no runtime.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::exit;
use crate::format::{self, FetchFormat, FormatError};
use crate::json::{self, JsonErrorKind};
use crate::plaintext::{Plaintext, PlaintextBuf};
use crate::socket::SocketSpec;
use crate::status::AgentStatus;

/// How long one exchange may take, connecting included. A later delivery may wait on a
/// fresh login and decrypt, so this is generous.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer accepted.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// A delivered document. Its bytes are a [`Plaintext`], wiped on drop.
pub struct Document {
    bytes: Plaintext,
    content_type: String,
    /// Where it came from, for error messages.
    socket: String,
}

impl Document {
    /// The document as delivered.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.expose()
    }

    /// The answer's `Content-Type`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The value of one top-level key: a string unquoted and unescaped, anything else as
    /// its JSON text. A document with a key twice, at any depth, is refused.
    pub fn key(&self, name: &str) -> Result<Plaintext, FormatError> {
        format::key_value(self.bytes.expose(), name)
    }

    /// The names of the top-level keys of a JSON document, sorted, without their
    /// values: what an application can log to show what it received. A document with a
    /// key twice, at any depth, is refused.
    pub fn keys(&self) -> Result<Vec<String>, FormatError> {
        let entries = json::object_entries(self.bytes.expose())?;
        let mut keys: Vec<String> = entries.into_iter().map(|(key, _)| key).collect();
        keys.sort_unstable();
        Ok(keys)
    }

    /// Deserialize the JSON document into the application's own type. The copies `T`
    /// holds are the application's to wipe (e.g. `secrecy::SecretString` fields or
    /// `zeroize::Zeroizing`); this `Document` still wipes its own bytes on drop. A
    /// document with a key twice, at any depth, is refused first, whatever `T` would
    /// make of it.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClientError> {
        let bytes = self.bytes.expose();
        let bad = |reason: String| ClientError::BadAnswer {
            socket: self.socket.clone(),
            reason,
        };
        if let Err(e) = json::check_value(bytes)
            && e.kind() == JsonErrorKind::DuplicateKey
        {
            return Err(bad(e.to_string()));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "the document does not have the expected shape (line {}, column {}: {:?})",
                e.line(),
                e.column(),
                e.classify()
            ))
        })
    }

    /// The bytes as a [`Plaintext`], without copying them.
    pub fn into_plaintext(self) -> Plaintext {
        self.bytes
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Document([REDACTED {} bytes, {}])",
            self.bytes.len(),
            self.content_type
        )
    }
}

/// Why the agent did not hand over the document. Exit codes: `Refused` →
/// `AGENT_REFUSED`, `Gone` → `AGENT_GONE`, `NotReady`/`Unreachable`/`BadAnswer` →
/// `AGENT_UNREACHABLE`, `Http` → `INPUT` for 400/422 (the request or the document
/// cannot be served that way), `AGENT_UNREACHABLE` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// 403, or the socket file's mode does not let this process connect.
    #[error("the agent on {socket} refused this process (uid {uid}): {message}")]
    Refused {
        /// The socket, as given.
        socket: String,
        /// This process's effective uid, the one the agent checked.
        uid: u32,
        /// The agent's reason.
        message: String,
        /// The agent's hint.
        hint: String,
    },

    /// 410: every delivery has been made.
    #[error(
        "the agent on {socket} has no delivery left{}",
        beyond("no delivery left", message)
    )]
    Gone {
        /// The socket, as given.
        socket: String,
        /// The agent's reason (how many deliveries were made).
        message: String,
        /// The agent's hint.
        hint: String,
    },

    /// 503: still starting, failed to start, or a fresh copy could not be fetched.
    #[error("the agent on {socket} is not ready{}", beyond("not ready", message))]
    NotReady {
        /// The socket, as given.
        socket: String,
        /// The agent's reason.
        message: String,
        /// The agent's hint.
        hint: String,
    },

    /// Nothing to connect to: no socket, nobody listening, or no answer in time.
    #[error("cannot reach the agent on {socket}: {reason}")]
    Unreachable {
        /// The socket, as given.
        socket: String,
        /// Why: no socket file, nobody listening, a timeout.
        reason: String,
    },

    /// Any other status; `message` is the agent's error and hint.
    #[error("the agent on {socket} answered HTTP {status}: {message}")]
    Http {
        /// The socket, as given.
        socket: String,
        /// The HTTP status code.
        status: u16,
        /// The agent's error, with its hint when it gave one.
        message: String,
    },

    /// Something answered, but not like an agent.
    #[error("unexpected answer on {socket}: {reason}")]
    BadAnswer {
        /// The socket, as given.
        socket: String,
        /// What was wrong with the answer; never its content.
        reason: String,
    },
}

impl ClientError {
    /// The documented exit code for this failure (the same as `secret-zero get`).
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Refused { .. } => exit::AGENT_REFUSED,
            ClientError::Gone { .. } => exit::AGENT_GONE,
            ClientError::Http {
                status: 400 | 422, ..
            } => exit::INPUT,
            ClientError::NotReady { .. }
            | ClientError::Unreachable { .. }
            | ClientError::Http { .. }
            | ClientError::BadAnswer { .. } => exit::AGENT_UNREACHABLE,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ClientError::Refused { hint, .. }
            | ClientError::Gone { hint, .. }
            | ClientError::NotReady { hint, .. } => Some(hint.clone()),
            ClientError::Unreachable { .. } => Some(
                "is the agent running and is its socket volume mounted in this container? \
                 check --socket"
                    .into(),
            ),
            ClientError::Http { .. } => None,
            ClientError::BadAnswer { .. } => {
                Some("check that --socket points at a secret-zero agent".into())
            }
        }
    }
}

/// Read the JSON document once from `socket`: the one call most applications need.
/// Errors are typed: [`ClientError::Refused`] (403), [`ClientError::Gone`] (410),
/// [`ClientError::Unreachable`] (no agent), each with [`ClientError::exit_code`].
#[cfg(feature = "tokio")]
pub async fn fetch_json(socket: &SocketSpec) -> Result<Document, ClientError> {
    fetch(socket, FetchFormat::Json).await
}

/// `fetch_json` without a runtime.
pub fn fetch_json_blocking(socket: &SocketSpec) -> Result<Document, ClientError> {
    fetch_blocking(socket, FetchFormat::Json)
}

/// Fetch the document once (this consumes a delivery when it succeeds).
#[cfg(feature = "tokio")]
pub async fn fetch(socket: &SocketSpec, format: FetchFormat) -> Result<Document, ClientError> {
    let path = format!("/v1/secret?format={}", format.as_str());
    let answer = exchange_async(socket, &path).await?;
    document(socket, answer)
}

/// `fetch` without a runtime.
pub fn fetch_blocking(socket: &SocketSpec, format: FetchFormat) -> Result<Document, ClientError> {
    let path = format!("/v1/secret?format={}", format.as_str());
    let answer = exchange_blocking(socket, &path)?;
    document(socket, answer)
}

/// Fetch one top-level value of the JSON document (`GET /v1/secret?key=NAME`): a string
/// unquoted and unescaped (`text/plain`), anything else as its JSON text
/// (`application/json`). The agent checks the key before it commits the delivery, so a
/// key the document lacks is an error ([`ClientError::Http`] 422, exit code `INPUT`)
/// that consumes nothing.
#[cfg(feature = "tokio")]
pub async fn fetch_key(socket: &SocketSpec, name: &str) -> Result<Document, ClientError> {
    let answer = exchange_async(socket, &key_path(name)).await?;
    key_document(socket, answer, name)
}

/// `fetch_key` without a runtime.
pub fn fetch_key_blocking(socket: &SocketSpec, name: &str) -> Result<Document, ClientError> {
    let answer = exchange_blocking(socket, &key_path(name))?;
    key_document(socket, answer, name)
}

/// The header with which the agent marks an answer that is one key's value (`key`).
pub const KEY_ANSWER_HEADER: &str = "x-secret-zero-answer";

/// The value the agent picked out; or, from an agent older than `?key=` (which ignores
/// the query and sends the whole document, the delivery spent either way), the value
/// picked out here, as before.
fn key_document(socket: &SocketSpec, answer: Answer, name: &str) -> Result<Document, ClientError> {
    let picked = answer.key_answer;
    let document = document(socket, answer)?;
    if picked {
        return Ok(document);
    }
    let value = format::key_value_typed(document.bytes(), name).map_err(|e| ClientError::Http {
        socket: socket.to_string(),
        status: 422,
        message: format!(
            "{e} (the agent predates ?key= and sent the whole document, so this delivery is \
             used up) (hint: {})",
            e.hint()
        ),
    })?;
    Ok(Document {
        socket: document.socket.clone(),
        content_type: if value.is_string {
            "text/plain; charset=utf-8".into()
        } else {
            "application/json".into()
        },
        bytes: value.value,
    })
}

/// `/v1/secret?key=NAME`, the name percent-encoded (everything but unreserved
/// characters), so any key name travels intact.
fn key_path(name: &str) -> String {
    let mut path = String::from("/v1/secret?key=");
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

/// The agent's status; never consumes a delivery.
#[cfg(feature = "tokio")]
pub async fn status(socket: &SocketSpec) -> Result<AgentStatus, ClientError> {
    let answer = exchange_async(socket, "/v1/status").await?;
    agent_status(socket, answer)
}

/// `status` without a runtime.
pub fn status_blocking(socket: &SocketSpec) -> Result<AgentStatus, ClientError> {
    let answer = exchange_blocking(socket, "/v1/status")?;
    agent_status(socket, answer)
}

fn document(socket: &SocketSpec, answer: Answer) -> Result<Document, ClientError> {
    if answer.status != 200 {
        return Err(refusal(socket, &answer));
    }
    Ok(Document {
        socket: socket.to_string(),
        content_type: answer.content_type,
        bytes: answer.body.into_plaintext(),
    })
}

fn agent_status(socket: &SocketSpec, answer: Answer) -> Result<AgentStatus, ClientError> {
    if answer.status != 200 {
        return Err(refusal(socket, &answer));
    }
    serde_json::from_slice(answer.body.expose()).map_err(|e| ClientError::BadAnswer {
        socket: socket.to_string(),
        reason: format!("status is not the expected JSON: {e}"),
    })
}

/// The error for a non-200 answer, from its `{"error", "hint"}` body.
fn refusal(socket: &SocketSpec, answer: &Answer) -> ClientError {
    #[derive(serde::Deserialize)]
    struct Body {
        error: String,
        #[serde(default)]
        hint: Option<String>,
    }
    let (message, hint) = match serde_json::from_slice::<Body>(answer.body.expose()) {
        Ok(body) => (body.error, body.hint.unwrap_or_default()),
        Err(_) => (format!("HTTP {}", answer.status), String::new()),
    };
    let socket = socket.to_string();
    match answer.status {
        403 => ClientError::Refused {
            socket,
            uid: rustix::process::geteuid().as_raw(),
            message,
            hint,
        },
        410 => ClientError::Gone {
            socket,
            message,
            hint,
        },
        503 => ClientError::NotReady {
            socket,
            message,
            hint,
        },
        status => ClientError::Http {
            socket,
            status,
            message: if hint.is_empty() {
                message
            } else {
                format!("{message} (hint: {hint})")
            },
        },
    }
}

fn request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: secret-zero/{}\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

fn connect_error(socket: &SocketSpec, e: std::io::Error) -> ClientError {
    use std::io::ErrorKind;
    let socket_name = socket.to_string();
    match e.kind() {
        ErrorKind::PermissionDenied => ClientError::Refused {
            socket: socket_name,
            uid: rustix::process::geteuid().as_raw(),
            message: "permission denied by the socket file's mode".into(),
            hint: "start the agent with a --socket-mode that lets this uid connect (e.g. 0660 \
                   with a shared group) and --allow-uid/--allow-gid for it"
                .into(),
        },
        ErrorKind::NotFound => ClientError::Unreachable {
            socket: socket_name,
            reason: match socket {
                SocketSpec::Path(_) => "no socket file there".into(),
                SocketSpec::Abstract(_) => "nobody listens on this abstract name".into(),
            },
        },
        ErrorKind::ConnectionRefused => ClientError::Unreachable {
            socket: socket_name,
            reason: match socket {
                SocketSpec::Path(_) => "nobody is listening (the agent has exited)".into(),
                SocketSpec::Abstract(_) => "nobody listens on this abstract name".into(),
            },
        },
        _ => ClientError::Unreachable {
            socket: socket_name,
            reason: e.to_string(),
        },
    }
}

fn io_error(socket: &SocketSpec, e: std::io::Error) -> ClientError {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ClientError::Unreachable {
            socket: socket.to_string(),
            reason: format!("no answer within {} s", TIMEOUT.as_secs()),
        },
        _ => ClientError::BadAnswer {
            socket: socket.to_string(),
            reason: format!("the connection failed: {e}"),
        },
    }
}

#[cfg(feature = "tokio")]
async fn exchange_async(socket: &SocketSpec, path: &str) -> Result<Answer, ClientError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut stream = match socket {
            SocketSpec::Path(path) => tokio::net::UnixStream::connect(path).await,
            SocketSpec::Abstract(name) => {
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .map_err(|e| connect_error(socket, e))?;
                tokio::net::UnixStream::connect_addr(&addr.into()).await
            }
        }
        .map_err(|e| connect_error(socket, e))?;
        // A refused peer is answered before its request is read: if the agent has
        // already closed, the write fails and the answer is still there to read.
        let sent = stream.write_all(&request(path)).await;
        let mut reader = AnswerReader::new(socket);
        let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
        loop {
            let n = match stream.read(&mut chunk[..]).await {
                Ok(n) => n,
                Err(e) => return Err(io_error(socket, sent.err().unwrap_or(e))),
            };
            if reader.feed(&chunk[..n])? {
                break;
            }
        }
        answer_or_send_error(socket, reader, sent)
    };
    match tokio::time::timeout(TIMEOUT, work).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Unreachable {
            socket: socket.to_string(),
            reason: format!("no answer within {} s", TIMEOUT.as_secs()),
        }),
    }
}

fn exchange_blocking(socket: &SocketSpec, path: &str) -> Result<Answer, ClientError> {
    let mut stream = match socket {
        SocketSpec::Path(path) => std::os::unix::net::UnixStream::connect(path),
        SocketSpec::Abstract(name) => {
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| std::os::unix::net::UnixStream::connect_addr(&addr))
        }
    }
    .map_err(|e| connect_error(socket, e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| io_error(socket, e))?;
    // As in `exchange_async`: an answer sent before the request was read still counts.
    let sent = stream.write_all(&request(path));
    let mut reader = AnswerReader::new(socket);
    let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        let n = match stream.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(socket, sent.err().unwrap_or(e))),
        };
        if reader.feed(&chunk[..n])? {
            break;
        }
    }
    answer_or_send_error(socket, reader, sent)
}

/// The answer read, or — when there is none and the request could not be sent — the
/// send's error.
fn answer_or_send_error(
    socket: &SocketSpec,
    reader: AnswerReader,
    sent: std::io::Result<()>,
) -> Result<Answer, ClientError> {
    match (reader.finish(), sent) {
        (Ok(answer), _) => Ok(answer),
        (Err(_), Err(e)) => Err(io_error(socket, e)),
        (Err(e), Ok(())) => Err(e),
    }
}

/// A parsed answer; the body is wiped on drop.
struct Answer {
    status: u16,
    content_type: String,
    /// The agent said the body is one key's value ([`KEY_ANSWER_HEADER`]).
    key_answer: bool,
    body: PlaintextBuf,
}

/// Accumulates an HTTP/1.1 answer: head parsed with `httparse`, body cut at
/// `Content-Length` or taken to end of stream.
struct AnswerReader {
    socket: String,
    buf: PlaintextBuf,
    head: Option<Head>,
}

struct Head {
    status: u16,
    content_type: String,
    key_answer: bool,
    length: Option<usize>,
    /// Bytes of head at the front of `buf`.
    size: usize,
}

impl AnswerReader {
    fn new(socket: &SocketSpec) -> AnswerReader {
        AnswerReader {
            socket: socket.to_string(),
            buf: PlaintextBuf::with_capacity(4096),
            head: None,
        }
    }

    fn bad(&self, reason: impl Into<String>) -> ClientError {
        ClientError::BadAnswer {
            socket: self.socket.clone(),
            reason: reason.into(),
        }
    }

    /// Take the next bytes read (empty: end of stream). `true` once the answer is whole.
    fn feed(&mut self, bytes: &[u8]) -> Result<bool, ClientError> {
        if bytes.is_empty() {
            return Ok(true);
        }
        if self.buf.len() + bytes.len() > MAX_ANSWER {
            return Err(self.bad(format!("answer larger than {MAX_ANSWER} bytes")));
        }
        self.buf.extend_from_slice(bytes);
        if self.head.is_none() {
            self.parse_head()?;
            if let Some(Head {
                length: Some(length),
                size,
                ..
            }) = &self.head
            {
                // Room for the whole body at once, so growth never copies it.
                let whole = size + length;
                self.buf.reserve(whole.saturating_sub(self.buf.len()));
            }
        }
        Ok(match &self.head {
            Some(Head {
                length: Some(length),
                size,
                ..
            }) => self.buf.len() >= size + length,
            _ => false,
        })
    }

    fn parse_head(&mut self) -> Result<(), ClientError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let size = match response.parse(self.buf.expose()) {
            Ok(httparse::Status::Complete(size)) => size,
            Ok(httparse::Status::Partial) => return Ok(()),
            Err(e) => return Err(self.bad(format!("not HTTP: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        let mut content_type = String::new();
        let mut key_answer = false;
        let mut length = None;
        for h in response.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_none() {
                    return Err(self.bad("invalid Content-Length"));
                }
            } else if h.name.eq_ignore_ascii_case("content-type") {
                content_type = String::from_utf8_lossy(h.value).into_owned();
            } else if h.name.eq_ignore_ascii_case(KEY_ANSWER_HEADER) {
                key_answer = h.value == b"key";
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(self.bad("chunked answers are not supported"));
            }
        }
        if let Some(length) = length
            && length > MAX_ANSWER
        {
            return Err(self.bad(format!("answer larger than {MAX_ANSWER} bytes")));
        }
        self.head = Some(Head {
            status,
            content_type,
            key_answer,
            length,
            size,
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Answer, ClientError> {
        let Some(head) = self.head.take() else {
            return Err(self.bad(if self.buf.is_empty() {
                "the connection closed without an answer".to_string()
            } else {
                "the answer ended inside its head".to_string()
            }));
        };
        let end = match head.length {
            Some(length) if self.buf.len() < head.size + length => {
                return Err(self.bad(format!(
                    "the answer ended after {} of {length} body bytes",
                    self.buf.len() - head.size
                )));
            }
            Some(length) => head.size + length,
            None => self.buf.len(),
        };
        self.buf.truncate(end);
        self.buf.discard_front(head.size);
        Ok(Answer {
            status: head.status,
            content_type: head.content_type,
            key_answer: head.key_answer,
            body: self.buf,
        })
    }
}

/// The agent's `message` as the rest of a line that already says `lead`: the agent
/// starts its own reason with the same words ("no delivery left: 1 of 1 made", "not
/// ready"), which are said once. `": "` and what is left, or nothing.
fn beyond(lead: &str, message: &str) -> String {
    let rest = match message.strip_prefix(lead) {
        Some("") => "",
        Some(rest) => rest.strip_prefix(": ").unwrap_or(message),
        None => message,
    };
    if rest.is_empty() {
        String::new()
    } else {
        format!(": {rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_reason_is_not_said_twice() {
        let gone = ClientError::Gone {
            socket: "/run/a.sock".into(),
            message: "no delivery left: 1 of 1 made".into(),
            hint: String::new(),
        };
        assert_eq!(
            gone.to_string(),
            "the agent on /run/a.sock has no delivery left: 1 of 1 made"
        );
        let not_ready = |message: &str| ClientError::NotReady {
            socket: "@a".into(),
            message: message.into(),
            hint: String::new(),
        };
        assert_eq!(
            not_ready("not ready").to_string(),
            "the agent on @a is not ready"
        );
        assert_eq!(
            not_ready("the fetch failed: Vault is sealed").to_string(),
            "the agent on @a is not ready: the fetch failed: Vault is sealed"
        );
        assert_eq!(
            not_ready("not readable: x").to_string(),
            "the agent on @a is not ready: not readable: x"
        );
    }

    fn reader() -> AnswerReader {
        AnswerReader::new(&SocketSpec::Abstract("t".into()))
    }

    #[test]
    fn content_length_cuts_the_body() {
        let mut r = reader();
        assert!(!r.feed(b"HTTP/1.1 200 OK\r\nContent-Len").unwrap());
        assert!(!r.feed(b"gth: 5\r\nContent-Type: a/b\r\n\r\nhel").unwrap());
        assert!(r.feed(b"lo").unwrap());
        let answer = r.finish().unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_type, "a/b");
        assert_eq!(answer.body.expose(), b"hello");
    }

    #[test]
    fn without_length_the_body_runs_to_eof() {
        let mut r = reader();
        assert!(!r.feed(b"HTTP/1.1 410 Gone\r\n\r\n{\"error\":").unwrap());
        assert!(!r.feed(b"\"x\"}").unwrap());
        assert!(r.feed(b"").unwrap());
        let answer = r.finish().unwrap();
        assert_eq!(
            (answer.status, answer.body.expose()),
            (410, &b"{\"error\":\"x\"}"[..])
        );
    }

    #[test]
    fn short_and_garbage_answers_are_bad() {
        let mut r = reader();
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        r.feed(b"").unwrap();
        assert!(matches!(r.finish(), Err(ClientError::BadAnswer { .. })));
        let mut r = reader();
        assert!(r.feed(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    fn document(body: &[u8]) -> Document {
        Document {
            bytes: Plaintext::new(body.to_vec()),
            content_type: "application/json".into(),
            socket: "@t".into(),
        }
    }

    #[test]
    fn documents_give_keys_values_and_types() {
        let doc = document(br#"{"b": {"x": 1}, "a": "it's"}"#);
        assert_eq!(doc.keys().unwrap(), ["a", "b"]);
        assert_eq!(doc.key("a").unwrap().expose(), b"it's");
        let value: serde_json::Value = doc.json().unwrap();
        assert_eq!(value["b"]["x"], 1);
        let shown = format!("{doc:?}");
        assert!(
            !shown.contains("it's") && shown.contains("REDACTED"),
            "{shown}"
        );
        assert_eq!(doc.into_plaintext().len(), 28);
        assert_eq!(document(b"[1]").keys().unwrap_err(), FormatError::NotObject);
    }

    #[test]
    fn documents_with_duplicate_keys_are_refused_by_every_reader() {
        for body in [
            &br#"{"K": "sentinel-1", "K": "sentinel-2"}"#[..],
            br#"{"K": {"n": "sentinel-1", "n": "sentinel-2"}}"#,
        ] {
            let doc = document(body);
            let errors = [
                doc.keys().unwrap_err().to_string(),
                doc.key("K").unwrap_err().to_string(),
                doc.json::<serde_json::Value>().unwrap_err().to_string(),
                doc.json::<std::collections::HashMap<String, serde_json::Value>>()
                    .unwrap_err()
                    .to_string(),
            ];
            for text in errors {
                assert!(
                    text.contains("more than once") || text.contains("duplicate key"),
                    "{text}"
                );
                assert!(!text.contains("sentinel"), "{text}");
            }
        }
    }

    /// An agent double on an abstract socket: answers each connection with the next
    /// canned answer, and hands back the requests it got.
    fn fake_agent(answers: Vec<Vec<u8>>) -> (SocketSpec, std::thread::JoinHandle<Vec<String>>) {
        use std::os::unix::net::{SocketAddr, UnixListener};
        let name = format!(
            "secret-zero-client-test-{}-{}",
            std::process::id(),
            fastish_id()
        );
        let listener =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    let n = stream.read(&mut chunk).unwrap();
                    assert!(n > 0, "the client closed before its request was whole");
                    request.extend_from_slice(&chunk[..n]);
                }
                requests.push(String::from_utf8(request).unwrap());
                stream.write_all(&answer).unwrap();
            }
            requests
        });
        (SocketSpec::Abstract(name), server)
    }

    fn fastish_id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::SeqCst)
    }

    fn answer(status: &str, content_type: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn blocking_calls_talk_to_an_agent() {
        let (socket, server) = fake_agent(vec![
            answer("200 OK", "application/json", r#"{"db_password":"s3cr3t"}"#),
            answer(
                "200 OK",
                "application/json",
                r#"{"state":"delivered","deliveries_left":0,"format":"json","key_version":2}"#,
            ),
            answer(
                "410 Gone",
                "application/json",
                r#"{"error":"no delivery left: 1 of 1 made","hint":"restart the pod"}"#,
            ),
            answer(
                "400 Bad Request",
                "application/json",
                r#"{"error":"unknown format","hint":"use json"}"#,
            ),
        ]);
        let doc = fetch_json_blocking(&socket).unwrap();
        assert_eq!(doc.key("db_password").unwrap().expose(), b"s3cr3t");
        assert_eq!(doc.content_type(), "application/json");
        let status = status_blocking(&socket).unwrap();
        assert!(status.is_healthy());
        assert_eq!(status.key_version, Some(2));
        let gone = fetch_blocking(&socket, FetchFormat::Dotenv).unwrap_err();
        assert_eq!(gone.exit_code(), exit::AGENT_GONE);
        assert_eq!(gone.hint().as_deref(), Some("restart the pod"));
        assert!(gone.to_string().contains("no delivery left"), "{gone}");
        let bad = fetch_blocking(&socket, FetchFormat::Raw).unwrap_err();
        assert_eq!(bad.exit_code(), exit::INPUT);
        assert_eq!(
            bad.to_string(),
            format!("the agent on {socket} answered HTTP 400: unknown format (hint: use json)")
        );
        let requests = server.join().unwrap();
        assert!(requests[0].starts_with("GET /v1/secret?format=json HTTP/1.1\r\n"));
        assert!(requests[1].starts_with("GET /v1/status HTTP/1.1\r\n"));
        assert!(requests[2].starts_with("GET /v1/secret?format=dotenv HTTP/1.1\r\n"));
        assert!(requests[3].starts_with("GET /v1/secret?format=raw HTTP/1.1\r\n"));
        assert!(
            requests
                .iter()
                .all(|r| r.contains("\r\nConnection: close\r\n"))
        );
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn async_calls_talk_to_an_agent() {
        let (socket, server) = fake_agent(vec![
            answer("200 OK", "text/plain; charset=utf-8", "A='1'\n"),
            answer(
                "503 Service Unavailable",
                "application/json",
                r#"{"error":"not ready","hint":"retry shortly"}"#,
            ),
        ]);
        let doc = fetch(&socket, FetchFormat::Dotenv).await.unwrap();
        assert_eq!(doc.bytes(), b"A='1'\n");
        let not_ready = status(&socket).await.unwrap_err();
        assert!(
            matches!(not_ready, ClientError::NotReady { .. }),
            "{not_ready:?}"
        );
        assert_eq!(not_ready.exit_code(), exit::AGENT_UNREACHABLE);
        server.join().unwrap();
    }

    #[test]
    fn a_key_is_asked_of_the_agent_and_picked_here_from_an_older_one() {
        let picked = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      X-Secret-Zero-Answer: key\r\nContent-Length: 6\r\n\r\ns3cr3t"
            .as_bytes()
            .to_vec();
        let whole = r#"{"db password":"s3cr3t","port":5432}"#;
        let (socket, server) = fake_agent(vec![
            picked,
            answer("200 OK", "application/json", whole),
            answer("200 OK", "application/json", whole),
        ]);
        let value = fetch_key_blocking(&socket, "db password").unwrap();
        assert_eq!(value.bytes(), b"s3cr3t");
        let value = fetch_key_blocking(&socket, "port").unwrap();
        assert_eq!(
            (value.bytes(), value.content_type()),
            (&b"5432"[..], "application/json"),
            "an older agent's whole document: the value is picked here"
        );
        let missing = fetch_key_blocking(&socket, "nope").unwrap_err();
        assert_eq!(missing.exit_code(), exit::INPUT);
        assert!(missing.to_string().contains("\"nope\""), "{missing}");
        assert!(!missing.to_string().contains("s3cr3t"), "{missing}");
        let requests = server.join().unwrap();
        assert!(requests[0].starts_with("GET /v1/secret?key=db%20password HTTP/1.1\r\n"));
        assert!(requests[1].starts_with("GET /v1/secret?key=port HTTP/1.1\r\n"));
    }

    #[test]
    fn nobody_listening_is_unreachable() {
        let socket =
            SocketSpec::Abstract(format!("secret-zero-client-none-{}", std::process::id()));
        let e = fetch_json_blocking(&socket).unwrap_err();
        assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
        assert_eq!(e.exit_code(), exit::AGENT_UNREACHABLE);
        let socket = SocketSpec::Path("/nonexistent/secret-zero/agent.sock".into());
        let e = fetch_json_blocking(&socket).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot reach the agent on /nonexistent/secret-zero/agent.sock: no socket file there"
        );
    }
}
