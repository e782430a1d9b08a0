//! Finding the Kubernetes API: a kubeconfig, or the in-cluster ServiceAccount files.

use std::path::{Path, PathBuf};

use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};

use super::error::KubeError;

/// Where kubelet mounts the pod's ServiceAccount token, CA and namespace.
pub const DEFAULT_SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach the API server.
#[derive(Debug, Clone)]
pub enum ClusterSource {
    /// The API at `https://host:port` (from `KUBERNETES_SERVICE_HOST`/`PORT` in a pod)
    /// with `{dir}/token`, `{dir}/ca.crt` and `{dir}/namespace`.
    InCluster {
        host: String,
        port: String,
        dir: PathBuf,
    },
    /// A kubeconfig file; `None` means `KUBECONFIG` or `~/.kube/config`.
    Kubeconfig(Option<PathBuf>),
}

impl ClusterSource {
    /// An explicit kubeconfig wins; otherwise in-cluster when `KUBERNETES_SERVICE_HOST`
    /// is set, as in a pod; otherwise the user's kubeconfig.
    pub fn detect(kubeconfig: Option<&Path>, serviceaccount_dir: Option<&Path>) -> ClusterSource {
        if let Some(path) = kubeconfig {
            return ClusterSource::Kubeconfig(Some(path.to_path_buf()));
        }
        let host = std::env::var("KUBERNETES_SERVICE_HOST").unwrap_or_default();
        if !host.is_empty() {
            return ClusterSource::InCluster {
                host,
                port: std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into()),
                dir: serviceaccount_dir
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SERVICEACCOUNT_DIR)),
            };
        }
        ClusterSource::Kubeconfig(None)
    }
}

/// A client and the namespace it defaults to.
pub async fn connect(source: &ClusterSource) -> Result<(kube::Client, String), KubeError> {
    crate::vault::install_crypto_provider();
    let mut config = match source {
        ClusterSource::InCluster { host, port, dir } => in_cluster(host, port, dir)?,
        ClusterSource::Kubeconfig(path) => from_kubeconfig(path.as_deref()).await?,
    };
    // Our own bounded retries decide what is transient; kube's layer would hide it.
    config.default_retry = false;
    config.read_timeout = Some(std::time::Duration::from_secs(30));
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config)
        .map_err(|e| KubeError::Config(format!("cannot build the Kubernetes client: {e}")))?;
    Ok((client, namespace))
}

fn in_cluster(host: &str, port: &str, dir: &Path) -> Result<kube::Config, KubeError> {
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let url: http::Uri = format!("https://{host}:{port}").parse().map_err(|e| {
        KubeError::Config(format!(
            "KUBERNETES_SERVICE_HOST/PORT do not form a URL: {e}"
        ))
    })?;

    let ca_path = dir.join("ca.crt");
    let ca_pem = std::fs::read(&ca_path).map_err(|e| {
        KubeError::Config(format!(
            "cannot read the cluster CA {}: {e}",
            ca_path.display()
        ))
    })?;
    let roots =
        pem_certs(&ca_pem).map_err(|e| KubeError::Config(format!("{}: {e}", ca_path.display())))?;
    let token_path = dir.join("token");
    if !token_path.is_file() {
        return Err(KubeError::Config(format!(
            "no ServiceAccount token at {}",
            token_path.display()
        )));
    }
    let ns_path = dir.join("namespace");
    let namespace = std::fs::read_to_string(&ns_path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "default".to_string());

    let mut config = kube::Config::new(url);
    config.default_namespace = namespace;
    config.root_cert = Some(roots);
    config.root_cert_file = Some(ca_path);
    // kube re-reads a token file as kubelet rotates it.
    config.auth_info = AuthInfo {
        token_file: Some(token_path.display().to_string()),
        ..Default::default()
    };
    Ok(config)
}

async fn from_kubeconfig(path: Option<&Path>) -> Result<kube::Config, KubeError> {
    let options = KubeConfigOptions::default();
    match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                KubeError::Config(format!("cannot load kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| {
                    KubeError::Config(format!("kubeconfig {} is unusable: {e}", path.display()))
                })
        }
        None => kube::Config::from_kubeconfig(&options).await.map_err(|e| {
            KubeError::Config(format!(
                "no usable kubeconfig (KUBECONFIG or ~/.kube/config) and not in a cluster: {e}"
            ))
        }),
    }
}

fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| {
            c.map(|c| c.to_vec())
                .map_err(|e| format!("not a PEM bundle: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(certs)
}
