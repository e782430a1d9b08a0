//! The HTTP plumbing shared by every Vault call: address, CA bundle, namespace header,
//! timeouts, and turning Vault's answers into [`VaultError`]s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::error::VaultError;
use super::token::VaultToken;
use crate::failure::root_cause;

/// Where Vault is and how to reach it.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `VAULT_ADDR`, e.g. `https://vault.vault.svc:8200`.
    pub addr: String,
    /// `VAULT_CACERT`: a PEM bundle that replaces the system roots when set.
    pub ca_cert: Option<PathBuf>,
    /// `VAULT_NAMESPACE`: sent as `X-Vault-Namespace` (Vault Enterprise / OpenBao namespaces).
    pub namespace: Option<String>,
    /// Per-request timeout, connect included.
    pub timeout: Duration,
    /// Keep idle connections for reuse. Off for the agent: an idle pooled connection
    /// keeps read buffers that held plaintext alive (ARCHITECTURE.md, I3).
    pub keep_alive: bool,
}

impl VaultConfig {
    /// The defaults, overridden by `VAULT_ADDR`, `VAULT_CACERT` and `VAULT_NAMESPACE`.
    pub fn from_env() -> VaultConfig {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        VaultConfig {
            addr: var("VAULT_ADDR").unwrap_or_else(|| crate::env::DEFAULT_VAULT_ADDR.to_string()),
            ca_cert: var("VAULT_CACERT").map(PathBuf::from),
            namespace: var("VAULT_NAMESPACE"),
            timeout: Duration::from_secs(10),
            keep_alive: false,
        }
    }

    /// The given address with the environment's other settings.
    pub fn new(addr: impl Into<String>) -> VaultConfig {
        VaultConfig {
            addr: addr.into(),
            ..VaultConfig::from_env()
        }
    }
}

/// A Vault/OpenBao client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    namespace: Option<String>,
    /// Requests sent by this client and its clones, for reports and benchmarks.
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.base).finish()
    }
}

/// A 2xx answer, its body wiped when dropped: Vault bodies carry plaintext and tokens.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Zeroizing<Vec<u8>>,
    /// `Retry-After`, in seconds, when Vault sent one (a rate-limit quota does when
    /// `enable_rate_limit_response_headers` is on).
    pub retry_after: Option<std::time::Duration>,
}

impl Client {
    /// Build a client. Fails on an unusable address or CA bundle.
    pub fn new(config: &VaultConfig) -> Result<Client, VaultError> {
        let url = url::Url::parse(&config.addr).map_err(|e| {
            VaultError::Config(format!(
                "invalid Vault address {:?}: {e} (expected e.g. https://vault:8200)",
                config.addr
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(VaultError::Config(format!(
                "invalid Vault address {:?}: scheme must be http or https",
                config.addr
            )));
        }
        crate::crypto::install_provider();

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .no_proxy()
            .user_agent(concat!("secret-zero/", env!("CARGO_PKG_VERSION")));
        if !config.keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        if let Some(ca) = &config.ca_cert {
            builder = builder.tls_backend_preconfigured(tls_config_for_ca(ca)?);
        } else if url.scheme() == "http" {
            // No TLS will be spoken: skip loading the system's root store, which costs
            // megabytes of memory and milliseconds at every agent start.
            builder =
                builder.tls_backend_preconfigured(tls_config(rustls::RootCertStore::empty())?);
        }
        let http = builder
            .build()
            .map_err(|e| VaultError::Config(format!("cannot build the Vault HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: config.addr.trim_end_matches('/').to_string(),
            namespace: config.namespace.clone(),
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// How many requests this client (and its clones) has sent.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The Vault address this client talks to.
    pub fn addr(&self) -> &str {
        &self.base
    }

    /// Send one request to `/v1/{path}` and return the raw 2xx answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, VaultError> {
        let answer = self.send_raw(method, path, token, body).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(status_error(path, &answer))
    }

    /// Send one request and return the answer whatever its status; only transport
    /// faults are errors. Batch endpoints answer 400 with per-item results.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Reply, VaultError> {
        let url = format!("{}/v1/{}", self.base, path);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self.http.request(method, &url);
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
                    VaultError::Config("the Vault token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(mut body) = body {
            // Hand the buffer over rather than copy it: one fewer copy of a secret.
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(std::mem::take(&mut *body));
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(path, e))?;
        let status = response.status();
        let retry_after = crate::retry::retry_after_header(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(path, e))?;
        Ok(Reply {
            status,
            body: Zeroizing::new(Vec::from(bytes)),
            retry_after,
        })
    }

    /// Send and parse the JSON answer.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&VaultToken>,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<T, VaultError> {
        let answer = self.send(method, path, token, body).await?;
        parse(path, &answer.body)
    }

    fn transport_error(&self, path: &str, error: reqwest::Error) -> VaultError {
        if let Some(detail) = tls_failure(&error) {
            return VaultError::Tls {
                addr: self.base.clone(),
                detail,
            };
        }
        let what = if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            format!("cannot connect to {}: {}", self.base, root_cause(&error))
        } else {
            root_cause(&error)
        };
        VaultError::Transient {
            path: path.to_string(),
            detail: what,
            retry_after: None,
        }
    }
}

/// Parse a JSON body; the error names the path, never the body (it may hold secrets).
pub(crate) fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, VaultError> {
    serde_json::from_slice(body).map_err(|e| VaultError::BadResponse {
        path: path.to_string(),
        detail: crate::failure::json_error_without_values(&e, body.is_empty()),
    })
}

/// Map a non-2xx answer and Vault's `{"errors": [...]}` body to a typed error.
pub(crate) fn status_error(path: &str, answer: &Reply) -> VaultError {
    let status = answer.status;
    let message = server_message(&answer.body);
    let path = path.to_string();
    match status.as_u16() {
        403 => VaultError::PermissionDenied { path, message },
        404 => VaultError::NotFound { path, message },
        503 => VaultError::Unavailable { path, message },
        429 | 500..=599 => VaultError::Transient {
            path,
            detail: match message.as_str() {
                "" => format!("HTTP {}", status.as_u16()),
                _ => format!("HTTP {}: {message}", status.as_u16()),
            },
            retry_after: answer.retry_after,
        },
        code => VaultError::InvalidRequest {
            path,
            status: code,
            message,
        },
    }
}

/// Vault's error strings joined (empty when Vault gave none, as for a missing key), or
/// a short note when the body is not Vault's shape (a proxy's HTML page, say). The
/// body itself is never echoed.
fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => one_line(&e.errors.join("; ")),
        Ok(_) => String::new(),
        Err(_) => format!("non-JSON error body ({} bytes)", body.len()),
    }
}

/// Vault's messages can span lines ("1 error occurred:\n\t* permission denied");
/// a failure is reported on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The TLS reason, when a request failed in the handshake.
fn tls_failure(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(tls.to_string());
        }
        source = e.source();
    }
    // Some layers flatten the rustls error into text on the way up; recognise it there.
    let cause = root_cause(error);
    let lower = cause.to_lowercase();
    if lower.contains("certificate") || lower.contains("handshake") {
        return Some(cause);
    }
    None
}

/// A TLS configuration that trusts exactly the CAs in `path`, as `VAULT_CACERT` does
/// for the Vault CLI.
fn tls_config_for_ca(path: &Path) -> Result<rustls::ClientConfig, VaultError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    let pem = std::fs::read(path).map_err(|e| {
        VaultError::Config(format!("cannot read VAULT_CACERT {}: {e}", path.display()))
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            VaultError::Config(format!(
                "VAULT_CACERT {} is not a PEM bundle: {e}",
                path.display()
            ))
        })?;
        roots.add(cert).map_err(|e| {
            VaultError::Config(format!(
                "VAULT_CACERT {} holds an unusable certificate: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(VaultError::Config(format!(
            "VAULT_CACERT {} holds no certificate",
            path.display()
        )));
    }
    tls_config(roots)
}

fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, VaultError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VaultError::Config(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Answer {
        data: Plain,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Plain {
        plaintext: String,
    }

    #[test]
    fn a_misshapen_body_is_described_without_its_values() {
        let detail = |body: &str| match parse::<Answer>("transit/decrypt/k", body.as_bytes()) {
            Err(VaultError::BadResponse { detail, .. }) => detail,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(detail(""), "the body is empty");
        assert!(detail("<html>sentinel</html>").starts_with("the body is not JSON"));
        assert!(detail(r#"{"data":{"plaintext":"#).starts_with("the body ends early"));
        assert!(
            detail(r#"{"request_id":"sentinel"}"#).starts_with("the body lacks the field `data`")
        );
        for body in [
            r#"{"data":"sentinel"}"#,
            r#"{"data":{"plaintext":["sentinel"]}}"#,
            r#"{"data":{"plaintext":4242}}"#,
        ] {
            let detail = detail(body);
            assert!(
                detail.starts_with("the body is JSON of another shape"),
                "{detail}"
            );
            assert!(
                !detail.contains("sentinel") && !detail.contains("4242"),
                "{detail}"
            );
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Login {
        client_token: String,
        lease_duration: u64,
    }

    #[test]
    fn a_login_answer_of_the_wrong_shape_never_quotes_the_token() {
        // Found by the `vault` fuzz target: serde_json quotes the value it could not use.
        for body in [
            r#"{"client_token": "x", "lease_duration": "s.sentinel-token"}"#,
            r#"{"client_token": ["s.sentinel-token"], "lease_duration": 1}"#,
            r#"{"client_token": {"s.sentinel-token": 1}, "lease_duration": 1}"#,
            "{\"client_token\": \"s.sentinel",
        ] {
            let e = parse::<Login>("auth/jwt/login", body.as_bytes()).unwrap_err();
            let text = e.to_string();
            assert!(!text.contains("sentinel"), "{text}");
            assert!(text.contains("line 1, column"), "{text}");
        }
    }
}
