//! The serving certificate, reloaded when its files change.
//!
//! cert-manager renews the certificate by rewriting the Secret, and kubelet swaps the
//! mounted files. The server's `ServerConfig` never changes: its certificate resolver
//! hands each new handshake the current key pair, which a poller replaces atomically
//! (an `Arc` swap under a lock held for a pointer copy). Handshakes in flight keep the
//! pair they started with, so no request fails during a swap.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// The files a key pair is read from.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Resolver that serves whatever key pair was loaded last.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
    /// What `current` was made from; taken by the reloader.
    loaded: Mutex<Option<Loaded>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// The raw bytes last loaded, to notice a change (compared, not hashed: they are small).
struct Loaded {
    cert: Vec<u8>,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Loaded {
    // The key's bytes stay out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaded { .. }")
    }
}

impl ReloadingCert {
    /// Load the pair once; fails if it cannot be used.
    pub fn load(files: &CertFiles, provider: Arc<CryptoProvider>) -> Result<Arc<Self>, TlsError> {
        let (cert, key) = read(files)?;
        let certified = parse(files, &cert, &key, &provider)?;
        Ok(Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(certified)),
            provider,
            loaded: Mutex::new(Some(Loaded { cert, key })),
        }))
    }

    /// Poll the files every `interval` and swap in a changed, valid pair. A pair that
    /// does not load (e.g. the certificate written, the key not yet) is retried at the
    /// next tick; the old one keeps serving meanwhile.
    pub fn spawn_reloader(self: &Arc<Self>, files: CertFiles, interval: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let taken = this
                .loaded
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let mut last = taken.unwrap_or_else(|| Loaded {
                cert: Vec::new(),
                key: Zeroizing::new(Vec::new()),
            });
            let mut warned = false;
            loop {
                tokio::time::sleep(interval).await;
                let changed = read(&files).and_then(|(cert, key)| {
                    if cert == last.cert && *key == *last.key {
                        return Ok(None);
                    }
                    let certified = parse(&files, &cert, &key, &this.provider)?;
                    Ok(Some((certified, Loaded { cert, key })))
                });
                match changed {
                    Ok(None) => {}
                    Ok(Some((certified, loaded))) => {
                        let summary = describe(&certified);
                        *this.current.write().unwrap_or_else(PoisonError::into_inner) =
                            Arc::new(certified);
                        tracing::info!(
                            "webhook: reloaded the TLS certificate from {} ({summary})",
                            files.cert.display()
                        );
                        last = loaded;
                        warned = false;
                    }
                    Err(e) => {
                        if !warned {
                            tracing::warn!("webhook: {e}; still serving the previous certificate");
                            warned = true;
                        }
                    }
                }
            }
        });
    }
}

fn read(files: &CertFiles) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
    };
    Ok((read(&files.cert)?, Zeroizing::new(read(&files.key)?)))
}

fn parse(
    files: &CertFiles,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "{}: not a PEM certificate chain: {e}",
                files.cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in it",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        TlsError(format!(
            "{}: not a PEM private key: {e}",
            files.key.display()
        ))
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        TlsError(format!(
            "{} and {} do not make a usable pair: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })
}

/// A few bytes of the leaf to tell certificates apart in the log (no parsing needed).
fn describe(certified: &CertifiedKey) -> String {
    let leaf = certified.cert.first().map(|c| c.as_ref()).unwrap_or(&[]);
    let tail: String = leaf
        .iter()
        .rev()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("leaf {} bytes, ...{tail}", leaf.len())
}

/// The server configuration: TLS 1.2 and 1.3, HTTP/1.1, the reloading resolver.
pub fn server_config(
    resolver: Arc<ReloadingCert>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: a resumed session skips the certificate, so after a swap
    // a client could go on without ever checking the new one. The API server keeps its
    // connections alive, so full handshakes are rare anyway.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}
