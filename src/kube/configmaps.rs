//! ConfigMap reads, for the development and migration source `--plaintext-configmap`.

use kube::api::Api;

use super::error::KubeError;

pub use k8s_openapi::api::core::v1::ConfigMap;

/// ConfigMaps through one client (read only: secret-zero never writes them).
#[derive(Clone)]
pub struct ConfigMaps {
    client: kube::Client,
}

impl ConfigMaps {
    pub fn new(client: kube::Client) -> ConfigMaps {
        ConfigMaps { client }
    }

    /// Read one ConfigMap.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<ConfigMap, KubeError> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(&format!("configmap {namespace}/{name}"), e))
    }
}
