//! The client side of the agent's socket, used by `get`, `probe` and applications.
//!
//! One small HTTP/1.1 exchange per call: `GET` with `Connection: close`, then the answer
//! read into a zeroizing buffer that grows without leaving copies behind and is cut at
//! `Content-Length` (or at end of stream). Hand-written rather than a pooled HTTP client
//! so that every byte of the answer is in a buffer we wipe. The blocking variants use
//! std sockets and need no runtime.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::Plaintext;
use crate::error::exit;
use crate::format::{self, FormatError, SecretBuf};

pub use crate::agent::{AgentState, AgentStatus, DocFormat, SocketSpec};

/// How long one exchange may take, connecting included. A later delivery may wait on a
/// fresh login and decrypt, so this is generous.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer accepted.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// How to ask for the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FetchFormat {
    /// The JSON document (refused by an agent serving raw bytes).
    #[default]
    Json,
    /// `KEY='value'` lines, ready for `set -a; . FILE`.
    Dotenv,
    /// The bytes as the agent holds them, JSON or not.
    Raw,
}

impl FetchFormat {
    fn query(self) -> &'static str {
        match self {
            FetchFormat::Json => "json",
            FetchFormat::Dotenv => "dotenv",
            FetchFormat::Raw => "raw",
        }
    }
}

/// A delivered document, wiped on drop.
pub struct Document {
    bytes: Zeroizing<Vec<u8>>,
    content_type: String,
    /// Where it came from, for error messages.
    socket: String,
}

impl Document {
    /// The document as delivered.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The answer's `Content-Type`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The value of one top-level key: a string unquoted and unescaped, anything else as
    /// its JSON text.
    pub fn key(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, FormatError> {
        format::key_value(&self.bytes, name)
    }

    /// The names of the top-level keys of a JSON document, sorted, without their
    /// values: what an application can log to show what it received.
    pub fn keys(&self) -> Result<Vec<String>, FormatError> {
        let first = self.bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(FormatError::NotObject);
        }
        serde_json::from_slice::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(
            &self.bytes,
        )
        .map(|map| map.into_keys().collect())
        // serde_json's message could quote a value: keep the position only.
        .map_err(|e| FormatError::NotJson(format!("line {}, column {}", e.line(), e.column())))
    }

    /// Deserialize the JSON document into the application's own type. The copies `T`
    /// holds are the application's to wipe (e.g. `secrecy::SecretString` fields or
    /// `zeroize::Zeroizing`); this `Document` still wipes its own bytes on drop.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.bytes).map_err(|e| ClientError::BadAnswer {
            socket: self.socket.clone(),
            reason: format!(
                "the document does not have the expected shape (line {}, column {}: {:?})",
                e.line(),
                e.column(),
                e.classify()
            ),
        })
    }

    /// The bytes as a [`Plaintext`], without copying them.
    pub fn into_plaintext(mut self) -> Plaintext {
        Plaintext::new(std::mem::take(&mut *self.bytes))
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
        socket: String,
        uid: u32,
        message: String,
        hint: String,
    },

    /// 410: every delivery has been made.
    #[error("the agent on {socket} has no delivery left: {message}")]
    Gone {
        socket: String,
        message: String,
        hint: String,
    },

    /// 503: still starting, failed to start, or a fresh copy could not be fetched.
    #[error("the agent on {socket} is not ready: {message}")]
    NotReady {
        socket: String,
        message: String,
        hint: String,
    },

    /// Nothing to connect to: no socket, nobody listening, or no answer in time.
    #[error("cannot reach the agent on {socket}: {reason}")]
    Unreachable { socket: String, reason: String },

    /// Any other status; `message` is the agent's error and hint.
    #[error("the agent on {socket} answered HTTP {status}: {message}")]
    Http {
        socket: String,
        status: u16,
        message: String,
    },

    /// Something answered, but not like an agent.
    #[error("unexpected answer on {socket}: {reason}")]
    BadAnswer { socket: String, reason: String },
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

/// The environment variable naming the agent's socket, the same one `get` reads.
pub const SOCKET_ENV: &str = "SECRET_ZERO_SOCKET";

/// The socket an application should use: `SECRET_ZERO_SOCKET` (a path or `@NAME`) when
/// set and not empty, else `/run/secret-zero/agent.sock`.
pub fn socket_from_env() -> Result<SocketSpec, crate::Error> {
    match std::env::var(SOCKET_ENV) {
        Ok(value) if !value.is_empty() => value.parse(),
        _ => Ok(SocketSpec::default()),
    }
}

/// Read the JSON document once from `socket`: the one call most applications need.
/// Errors are typed: [`ClientError::Refused`] (403), [`ClientError::Gone`] (410),
/// [`ClientError::Unreachable`] (no agent), each with [`ClientError::exit_code`].
pub async fn fetch_json(socket: &SocketSpec) -> Result<Document, ClientError> {
    fetch(socket, FetchFormat::Json).await
}

/// [`fetch_json`] without a runtime.
pub fn fetch_json_blocking(socket: &SocketSpec) -> Result<Document, ClientError> {
    fetch_blocking(socket, FetchFormat::Json)
}

/// Fetch the document once (this consumes a delivery when it succeeds).
pub async fn fetch(socket: &SocketSpec, format: FetchFormat) -> Result<Document, ClientError> {
    let path = format!("/v1/secret?format={}", format.query());
    let answer = exchange_async(socket, &path).await?;
    document(socket, answer)
}

/// [`fetch`] without a runtime.
pub fn fetch_blocking(socket: &SocketSpec, format: FetchFormat) -> Result<Document, ClientError> {
    let path = format!("/v1/secret?format={}", format.query());
    let answer = exchange_blocking(socket, &path)?;
    document(socket, answer)
}

/// The agent's status; never consumes a delivery.
pub async fn status(socket: &SocketSpec) -> Result<AgentStatus, ClientError> {
    let answer = exchange_async(socket, "/v1/status").await?;
    agent_status(socket, answer)
}

/// [`status`] without a runtime.
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
        bytes: answer.body.into_inner(),
    })
}

fn agent_status(socket: &SocketSpec, answer: Answer) -> Result<AgentStatus, ClientError> {
    if answer.status != 200 {
        return Err(refusal(socket, &answer));
    }
    serde_json::from_slice(answer.body.as_slice()).map_err(|e| ClientError::BadAnswer {
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
    let (message, hint) = match serde_json::from_slice::<Body>(answer.body.as_slice()) {
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

async fn exchange_async(socket: &SocketSpec, path: &str) -> Result<Answer, ClientError> {
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
        stream
            .write_all(&request(path))
            .await
            .map_err(|e| io_error(socket, e))?;
        let mut reader = AnswerReader::new(socket);
        let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
        loop {
            let n = stream
                .read(&mut chunk[..])
                .await
                .map_err(|e| io_error(socket, e))?;
            if reader.feed(&chunk[..n])? {
                break;
            }
        }
        reader.finish()
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
    stream
        .write_all(&request(path))
        .map_err(|e| io_error(socket, e))?;
    let mut reader = AnswerReader::new(socket);
    let mut chunk = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        let n = match stream.read(&mut chunk[..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(socket, e)),
        };
        if reader.feed(&chunk[..n])? {
            break;
        }
    }
    reader.finish()
}

/// A parsed answer; the body is wiped on drop.
struct Answer {
    status: u16,
    content_type: String,
    body: SecretBuf,
}

/// Accumulates an HTTP/1.1 answer: head parsed with `httparse`, body cut at
/// `Content-Length` or taken to end of stream.
struct AnswerReader {
    socket: String,
    buf: SecretBuf,
    head: Option<Head>,
}

struct Head {
    status: u16,
    content_type: String,
    length: Option<usize>,
    /// Bytes of head at the front of `buf`.
    size: usize,
}

impl AnswerReader {
    fn new(socket: &SocketSpec) -> AnswerReader {
        AnswerReader {
            socket: socket.to_string(),
            buf: SecretBuf::with_capacity(4096),
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
        let size = match response.parse(self.buf.as_slice()) {
            Ok(httparse::Status::Complete(size)) => size,
            Ok(httparse::Status::Partial) => return Ok(()),
            Err(e) => return Err(self.bad(format!("not HTTP: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        let mut content_type = String::new();
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
            body: self.buf,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(answer.body.as_slice(), b"hello");
    }

    #[test]
    fn without_length_the_body_runs_to_eof() {
        let mut r = reader();
        assert!(!r.feed(b"HTTP/1.1 410 Gone\r\n\r\n{\"error\":").unwrap());
        assert!(!r.feed(b"\"x\"}").unwrap());
        assert!(r.feed(b"").unwrap());
        let answer = r.finish().unwrap();
        assert_eq!(
            (answer.status, answer.body.as_slice()),
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
}
