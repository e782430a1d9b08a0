//! The agent's socket (`src/agent/http.rs`, behind hyper): the bytes a client writes,
//! answered by the agent's own routes and query parsing over an in-memory connection.
//!
//! Input: one control byte (the peer allowed or not, the document JSON or raw), then
//! what the client writes on the connection.
//!
//! Properties:
//! - an answer is HTTP/1.x; each of the agent's own answers says `Cache-Control:
//!   no-store` and `Connection: close`;
//! - the secret leaves only in a 200 to an allowed peer's `GET /v1/secret`, and then
//!   exactly one delivery is spent; nothing else spends one;
//! - a refused peer gets 403 (or hyper's own 400 for bytes that are not HTTP) and never
//!   a byte of the secret.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::agent::{AgentConfig, DocFormat, serve_io};
use secret_zero_client::Plaintext;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "Zq7SecretVv3Kp9";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let [control, request @ ..] = data else {
        return;
    };
    let allowed = control & 1 == 0;
    let format = if control & 2 == 0 {
        DocFormat::Json
    } else {
        DocFormat::Raw
    };
    let config = AgentConfig {
        format,
        ..AgentConfig::default()
    };
    let document = format!("{{\"password\":\"{SECRET}\",\"user\":\"it's\"}}");
    let (answer, status) = runtime().block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let first = Plaintext::new(document.into_bytes());
        let agent =
            tokio::spawn(async move { serve_io(server, allowed, &config, first, None).await });
        let (mut read, mut write) = tokio::io::split(&mut client);
        let writing = async {
            // The agent may close before reading everything: that is its right.
            let _ = write.write_all(request).await;
            let _ = write.shutdown().await;
        };
        let mut answer = Vec::new();
        let reading = read.read_to_end(&mut answer);
        let ((), read) = tokio::join!(writing, reading);
        read.expect("reading the answer");
        (answer, agent.await.expect("the connection task"))
    });

    let delivered = 1 - status.deliveries_left;
    let leaked = contains(&answer, SECRET.as_bytes());
    if answer.is_empty() {
        assert_eq!(delivered, 0, "a delivery without an answer");
        return;
    }
    let head_end = find(&answer, b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    // HTTP/1.0 is answered in kind.
    assert!(
        head.starts_with("http/1.1 ") || head.starts_with("http/1.0 "),
        "not HTTP/1.x: {head:?}"
    );
    let code: u16 = head[9..12].parse().expect("a status code");
    let ours = head.contains("x-content-type-options: nosniff");
    if ours {
        assert!(head.contains("cache-control: no-store"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
    } else {
        assert!(
            matches!(code, 400 | 408 | 413 | 414 | 431 | 500 | 505),
            "hyper said {code}"
        );
    }
    if !allowed {
        assert!(!ours || code == 403, "a refused peer got {code}");
    }
    if leaked || delivered == 1 {
        assert!(
            allowed && ours && code == 200,
            "the secret left in a {code}"
        );
        assert!(
            leaked && delivered == 1,
            "a 200 with the secret spends one delivery"
        );
        let line = request
            .split(|&b| b == b'\n')
            .find(|l| !l.iter().all(u8::is_ascii_whitespace))
            .unwrap_or_default();
        assert!(
            line.starts_with(b"GET ") && contains(line, b"/v1/secret"),
            "delivered to {:?}",
            String::from_utf8_lossy(line)
        );
    }
});

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}
