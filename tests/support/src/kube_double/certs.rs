//! The serving certificate: a throwaway CA and a leaf for 127.0.0.1, so clients verify
//! TLS against `ca_pem()` instead of skipping verification (kubectl refuses to send a
//! bearer token over plain HTTP anyway).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-double-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = SERVING_NAMES.iter().map(|n| n.to_string()).collect();
    let mut leaf_params = CertificateParams::new(names).expect("serving cert params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().expect("serving key");
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("serving cert");

    let chain = vec![
        leaf_cert.der().clone(),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // A provider passed explicitly: the process-wide default may be unset or another one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("serving cert and key");
    // HTTP/1.1 only: the server speaks nothing else, and ALPN tells clients so.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    ServingTls {
        ca_pem: ca_cert.pem(),
        config: Arc::new(config),
    }
}
