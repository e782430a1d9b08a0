//! Pod listing, for `audit` (read only: secret-zero never writes pods). The list is
//! paged with `limit` and `continue`, as kubectl pages it, so a large cluster is read in
//! bounded pieces.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::{Api, ListParams};

use super::error::KubeError;

pub use k8s_openapi::api::core::v1::Pod;

/// One page of a pod list.
#[derive(Debug, Default)]
pub struct PodPage {
    pub items: Vec<Pod>,
    /// The `continue` token for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Pods through one client.
#[derive(Clone)]
pub struct Pods {
    client: kube::Client,
    /// API requests made through this value and its clones.
    requests: Arc<AtomicU64>,
}

impl Pods {
    pub fn new(client: kube::Client) -> Pods {
        Pods {
            client,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many API requests were made through this value and its clones.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// At most `limit` pods of one namespace, or of all namespaces when `namespace` is
    /// `None`, starting where `continue_token` (from the previous page) says.
    pub async fn page(
        &self,
        namespace: Option<&str>,
        limit: u32,
        continue_token: Option<&str>,
    ) -> Result<PodPage, KubeError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (api, scope): (Api<Pod>, String) = match namespace {
            Some(ns) => (
                Api::namespaced(self.client.clone(), ns),
                format!("pods in {ns}"),
            ),
            None => (
                Api::all(self.client.clone()),
                "pods in all namespaces".to_string(),
            ),
        };
        let mut params = ListParams::default().limit(limit);
        if let Some(token) = continue_token {
            params = params.continue_token(token);
        }
        let list = api
            .list(&params)
            .await
            .map_err(|e| KubeError::from_kube(&scope, e))?;
        let next = list.metadata.continue_.filter(|t| !t.is_empty());
        Ok(PodPage {
            items: list.items,
            next,
        })
    }
}
