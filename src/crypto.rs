//! The process-wide rustls crypto provider. reqwest and kube are built without a
//! default one (to keep aws-lc's C build out); ring becomes the default once, before
//! the first TLS client is made.

pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
