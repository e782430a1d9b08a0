//! One page of a list (`limit` + `continue`), for any namespaced kind: the Secrets of
//! `rotate` and the pods of `audit` are listed the same way.

use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use super::error::KubeError;

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page<K> {
    pub items: Vec<K>,
    /// The `continue` token for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// At most `limit` objects of kind `K` (`plural` names it in errors) in one namespace,
/// or in all when `namespace` is `None`, matching `selector` when given, starting where
/// `continue_token` (from the previous page) says.
pub(super) async fn list_page<K>(
    client: &kube::Client,
    plural: &str,
    namespace: Option<&str>,
    selector: Option<&str>,
    limit: u32,
    continue_token: Option<&str>,
) -> Result<Page<K>, KubeError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let (api, mut scope): (Api<K>, String) = match namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            format!("{plural} in {ns}"),
        ),
        None => (
            Api::all(client.clone()),
            format!("{plural} in all namespaces"),
        ),
    };
    let mut params = ListParams::default().limit(limit);
    if let Some(selector) = selector {
        params = params.labels(selector);
        scope = format!("{scope} ({selector})");
    }
    if let Some(token) = continue_token {
        params = params.continue_token(token);
    }
    let list = api
        .list(&params)
        .await
        .map_err(|e| KubeError::from_kube(&scope, e))?;
    Ok(Page {
        items: list.items,
        next: list.metadata.continue_.filter(|t| !t.is_empty()),
    })
}
