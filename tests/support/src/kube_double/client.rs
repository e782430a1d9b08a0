//! A plain HTTPS client for tests that talk to the double without a Kubernetes library
//! (TokenReview checks, the test-bed API). TLS is verified against the double's CA.

use std::sync::Arc;

use serde_json::Value;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// Sends one request; answers `(status, body)` with a non-JSON body as a JSON string.
/// Transport failures panic: in a test they mean the double is not there.
pub(crate) fn call(
    base_url: &str,
    ca_pem: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let ca = Certificate::from_pem(ca_pem.as_bytes()).expect("kube double CA PEM");
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base_url}{path}"))
        .header("accept", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let payload = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            serde_json::to_vec(body).expect("JSON body")
        }
        None => Vec::new(),
    };
    let request = request.body(payload).expect("request");
    let mut response = agent
        .run(request)
        .unwrap_or_else(|e| panic!("kube double: {method} {path}: {e}"));
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("kube double: {method} {path}: reading the body: {e}"));
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
