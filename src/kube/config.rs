//! Finding the Kubernetes API: a kubeconfig, or the in-cluster ServiceAccount files.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::KubeError;

use crate::env::DEFAULT_SERVICEACCOUNT_DIR;

/// The volume `inject` and the webhook give the agent for its Kubernetes API token,
/// mounted at the in-cluster directory; named here so that the error for a missing
/// file can name it.
pub const KUBE_API_VOLUME: &str = "secret-zero-kube-api";

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
    crate::crypto::install_provider();
    let mut config = match source {
        ClusterSource::InCluster { host, port, dir } => in_cluster(host, port, dir).await?,
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

/// The in-cluster configuration: kube's own loader for the usual ServiceAccount
/// directory, and for another directory (`--serviceaccount-dir`) the same settings
/// written as a kubeconfig, so kube's loader reads those files too. Either way kube
/// re-reads the token file as kubelet rotates it.
async fn in_cluster(host: &str, port: &str, dir: &Path) -> Result<kube::Config, KubeError> {
    // Say which file is missing and what mounts it, before kube's terser messages.
    for file in ["ca.crt", "token"] {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(KubeError::Config(missing_in_cluster_file(&path, dir)));
        }
    }
    if dir == Path::new(DEFAULT_SERVICEACCOUNT_DIR) {
        return kube::Config::incluster()
            .map_err(|e| KubeError::Config(format!("in-cluster configuration: {e}")));
    }
    // An IPv6 service address needs brackets in a URL.
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let namespace = std::fs::read_to_string(dir.join("namespace"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "default".to_string());
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "clusters": [{"name": "in-cluster", "cluster": {
            "server": format!("https://{host}:{port}"),
            "certificate-authority": dir.join("ca.crt"),
        }}],
        "users": [{"name": "serviceaccount", "user": {"tokenFile": dir.join("token")}}],
        "contexts": [{"name": "in-cluster", "context": {
            "cluster": "in-cluster", "user": "serviceaccount", "namespace": namespace,
        }}],
        "current-context": "in-cluster",
    }))
    .map_err(|e| KubeError::Config(format!("in-cluster configuration: {e}")))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| {
            KubeError::Config(format!(
                "in-cluster configuration from {}: {e}",
                dir.display()
            ))
        })
}

/// What to check when an in-cluster file is missing: who mounts it, and the way out.
fn missing_in_cluster_file(path: &Path, dir: &Path) -> String {
    let what = if dir == Path::new(DEFAULT_SERVICEACCOUNT_DIR) {
        format!(
            "check that the agent's container mounts a Kubernetes API token there (`secret-zero inject` and the webhook add the volume {KUBE_API_VOLUME}: inject the pod again), or that automountServiceAccountToken is not false on the pod or its ServiceAccount"
        )
    } else {
        "check --serviceaccount-dir (SECRET_ZERO_SERVICEACCOUNT_DIR): it must hold token, ca.crt and namespace".to_string()
    };
    format!(
        "in a pod (KUBERNETES_SERVICE_HOST is set) but {} is missing, so the Kubernetes API cannot be reached: {what}; or give --kubeconfig",
        path.display()
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_in_cluster_file_says_what_to_check() {
        let dir = Path::new(DEFAULT_SERVICEACCOUNT_DIR);
        let usual = missing_in_cluster_file(&dir.join("token"), dir);
        for what in [
            "/var/run/secrets/kubernetes.io/serviceaccount/token is missing",
            "volume secret-zero-kube-api",
            "inject the pod again",
            "automountServiceAccountToken is not false on the pod or its ServiceAccount",
            "--kubeconfig",
        ] {
            assert!(usual.contains(what), "{what:?} not in {usual}");
        }
        let custom = Path::new("/sa");
        let other = missing_in_cluster_file(&custom.join("ca.crt"), custom);
        assert!(
            other.contains("/sa/ca.crt is missing") && other.contains("check --serviceaccount-dir"),
            "{other}"
        );
    }
}
