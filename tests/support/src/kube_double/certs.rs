//! The serving certificate: from the test bed's CA, for 127.0.0.1 and the in-cluster
//! names, so clients verify TLS against `ca_pem()` instead of skipping verification
//! (kubectl refuses to send a bearer token over plain HTTP anyway).

use std::sync::Arc;

use rustls::ServerConfig;

use crate::certs::TestCa;

/// The names a real in-cluster client or a local test may dial.
const SERVING_NAMES: [&str; 4] = [
    "127.0.0.1",
    "localhost",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

pub(crate) struct ServingTls {
    /// PEM of the self-signed CA that signed the serving certificate.
    pub ca_pem: String,
    pub config: Arc<ServerConfig>,
}

pub(crate) fn generate() -> ServingTls {
    let ca = TestCa::new("kube-double-ca");
    // HTTP/1.1 only: the server speaks nothing else, and ALPN tells clients so.
    let config = ca.server_cert(&SERVING_NAMES).server_config(&[b"http/1.1"]);
    ServingTls {
        ca_pem: ca.pem().to_string(),
        config,
    }
}
