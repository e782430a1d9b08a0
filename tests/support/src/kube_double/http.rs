//! The request and response as the handlers see them: whole bodies, parsed query,
//! no streaming (nothing the double serves needs it).

use hyper::HeaderMap;
use serde_json::Value;

pub(crate) struct ApiRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ApiRequest {
    pub(crate) fn new(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> ApiRequest {
        let query = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        ApiRequest {
            method: method.to_string(),
            path: path.to_string(),
            query,
            headers,
            body,
        }
    }

    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The media type of the body, without parameters.
    pub(crate) fn content_type(&self) -> String {
        self.header("content-type")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// The bearer token, if the request carries one.
    pub(crate) fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization");
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// kubectl asks for server-side printing (`as=Table`) on `get`.
    pub(crate) fn wants_table(&self) -> bool {
        self.header("accept").split(',').any(|part| {
            let params: Vec<&str> = part.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
        })
    }

    /// `?dryRun=All`: validate and answer, but persist nothing.
    pub(crate) fn dry_run(&self) -> bool {
        self.query("dryRun") == Some("All")
    }
}

pub(crate) struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A `Retry-After` header (seconds).
    pub retry_after: Option<u32>,
    /// Close the connection instead of answering in full (a test's fault knob).
    pub cut: Option<Cut>,
}

/// How an answer is cut short, as when an API server (or a load balancer in front of
/// it) dies or drops the connection in the middle of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The connection is closed before any byte of the answer.
    BeforeAnswer,
    /// The status line, the headers (with the full `Content-Length`) and half the
    /// body are sent, then the connection is closed.
    MidBody,
}

impl ApiResponse {
    pub(crate) fn json(status: u16, value: &Value) -> ApiResponse {
        ApiResponse {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).expect("JSON"),
            retry_after: None,
            cut: None,
        }
    }

    /// Plain-text answers, as Go's `http.NotFound` gives for paths no handler owns.
    pub(crate) fn text(status: u16, text: &str) -> ApiResponse {
        ApiResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: text.as_bytes().to_vec(),
            retry_after: None,
            cut: None,
        }
    }
}
