//! Pod listing, for `audit` (read only: secret-zero never writes pods). The list is
//! paged with `limit` and `continue`, as kubectl pages it, so a large cluster is read in
//! bounded pieces.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::KubeError;
use super::page::{Page, list_page};

pub use k8s_openapi::api::core::v1::Pod;

/// One page of a pod list.
pub type PodPage = Page<Pod>;

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
        list_page(&self.client, "pods", namespace, None, limit, continue_token).await
    }
}
