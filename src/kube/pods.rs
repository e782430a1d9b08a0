//! Pod listing, for `audit` (read only: secret-zero never writes pods). The list is
//! paged with `limit` and `continue`, as kubectl pages it, so a large cluster is read in
//! bounded pieces.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::KubeError;
use super::page::{Page, list_page};

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// The parts of a pod that `audit` reads. Not `k8s_openapi`'s `Pod`: decoding every
/// field of every pod spec type would put code for all of them into the agent's binary
/// (and its memory), for the four fields audit looks at. Unknown fields are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Option<PodSpec>,
    #[serde(default)]
    pub status: Option<PodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub init_containers: Option<Vec<Container>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub restart_policy: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodStatus {
    #[serde(default)]
    pub phase: Option<String>,
}

impl kube::Resource for Pod {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

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
