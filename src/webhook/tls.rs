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

use super::metrics::Metrics;

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

    /// The notAfter of the leaf now served, in Unix seconds (`None`: unreadable).
    pub fn not_after(&self) -> Option<i64> {
        let current = Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner));
        leaf_not_after(&current)
    }

    /// Poll the files every `interval` and swap in a changed, valid pair. A pair that
    /// does not load keeps the old one serving; it is logged and counted as a failed
    /// reload once it is seen on two polls in a row, so that files caught half-written
    /// (the certificate written, the key not yet) are not reported, and a broken state
    /// that stays is reported once.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        files: CertFiles,
        interval: Duration,
        metrics: Arc<Metrics>,
    ) {
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
            // The broken state seen at the last poll, and whether it was reported.
            let mut broken: Option<(Broken, bool)> = None;
            loop {
                tokio::time::sleep(interval).await;
                let (seen, error) = match read(&files) {
                    Err(e) => (Broken::Unreadable(e.to_string()), e),
                    Ok((cert, key)) => {
                        if cert == last.cert && *key == *last.key {
                            broken = None;
                            continue;
                        }
                        match parse(&files, &cert, &key, &this.provider) {
                            Ok(certified) => {
                                let summary = describe(&certified);
                                let not_after = leaf_not_after(&certified);
                                *this.current.write().unwrap_or_else(PoisonError::into_inner) =
                                    Arc::new(certified);
                                metrics.certificate_reloaded(not_after);
                                tracing::info!(
                                    "webhook: reloaded the TLS certificate from {} ({summary})",
                                    files.cert.display()
                                );
                                last = Loaded { cert, key };
                                broken = None;
                                continue;
                            }
                            Err(e) => (Broken::Unusable(Loaded { cert, key }), e),
                        }
                    }
                };
                match &mut broken {
                    Some((before, reported)) if before.same(&seen) => {
                        if !*reported {
                            tracing::warn!(
                                "webhook: {error}; still serving the previous certificate"
                            );
                            metrics.certificate_reload_failed();
                            *reported = true;
                        }
                    }
                    _ => broken = Some((seen, false)),
                }
            }
        });
    }
}

/// Certificate files that cannot be used.
enum Broken {
    /// They cannot be read (the message).
    Unreadable(String),
    /// They were read but do not make a usable pair.
    Unusable(Loaded),
}

impl Broken {
    fn same(&self, other: &Broken) -> bool {
        match (self, other) {
            (Broken::Unreadable(a), Broken::Unreadable(b)) => a == b,
            (Broken::Unusable(a), Broken::Unusable(b)) => a.cert == b.cert && *a.key == *b.key,
            _ => false,
        }
    }
}

/// The leaf's notAfter, logged when it cannot be read (rustls took the certificate, so
/// that would be odd; the gauge then says 0, which an expiry alert notices).
fn leaf_not_after(certified: &CertifiedKey) -> Option<i64> {
    let leaf = certified.cert.first()?;
    match not_after(leaf.as_ref()) {
        Ok(seconds) => Some(seconds),
        Err(e) => {
            tracing::warn!("webhook: cannot read the certificate's notAfter: {e}");
            None
        }
    }
}

/// The notAfter of a DER X.509 certificate, in Unix seconds.
///
/// Only the path to `tbsCertificate.validity` is decoded (RFC 5280, 4.1): the
/// certificate was already parsed and checked against its key by rustls.
pub fn not_after(der: &[u8]) -> Result<i64, der::Error> {
    use der::{Decode, Reader, SliceReader, Tag, TagNumber, asn1::AnyRef};

    fn time<'a>(r: &mut SliceReader<'a>) -> Result<Duration, der::Error> {
        use der::asn1::{GeneralizedTime, UtcTime};
        match Tag::peek(r)? {
            Tag::UtcTime => Ok(UtcTime::decode(r)?.to_unix_duration()),
            Tag::GeneralizedTime => Ok(GeneralizedTime::decode(r)?.to_unix_duration()),
            tag => Err(tag.unexpected_error(None).into()),
        }
    }
    fn rest(r: &mut SliceReader<'_>) -> Result<(), der::Error> {
        r.read_slice(r.remaining_len()).map(drop)
    }

    let mut reader = SliceReader::new(der)?;
    let not_after = reader.sequence(|certificate| {
        let not_after = certificate.sequence(|tbs| {
            let version = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            };
            if Tag::peek(tbs)? == version {
                AnyRef::decode(tbs)?;
            }
            // serialNumber, signature, issuer
            for _ in 0..3 {
                AnyRef::decode(tbs)?;
            }
            let not_after = tbs.sequence(|validity| {
                time(validity)?;
                time(validity)
            })?;
            rest(tbs)?;
            Ok::<_, der::Error>(not_after)
        })?;
        rest(certificate)?;
        Ok::<_, der::Error>(not_after)
    })?;
    reader.finish()?;
    i64::try_from(not_after.as_secs()).map_err(|_| der::ErrorKind::Overflow.into())
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

#[cfg(test)]
mod tests {
    use super::not_after;

    #[test]
    fn not_after_refuses_what_is_not_a_certificate() {
        assert!(not_after(b"").is_err());
        assert!(not_after(b"-----BEGIN CERTIFICATE-----").is_err());
        // A SEQUENCE holding an INTEGER: no tbsCertificate in it.
        assert!(not_after(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }
}
