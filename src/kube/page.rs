//! One page of a list (`limit` + `continue`), for any namespaced kind: the Secrets of
//! `rotate` and the pods of `audit` are listed the same way.

use kube::api::{ListParams, ObjectList};
use kube::client::Body;
use kube::core::{Request, Status};
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
    let mut scope = match namespace {
        Some(ns) => format!("{plural} in {ns}"),
        None => format!("{plural} in all namespaces"),
    };
    let mut params = ListParams::default().limit(limit);
    if let Some(selector) = selector {
        params = params.labels(selector);
        scope = format!("{scope} ({selector})");
    }
    if let Some(token) = continue_token {
        params = params.continue_token(token);
    }
    // Sent by hand rather than through `Api::list`, which drops the headers: API
    // Priority and Fairness says how long to wait only in `Retry-After`, on a
    // plain-text 429.
    let url = K::url_path(&K::DynamicType::default(), namespace);
    let request = Request::new(url)
        .list(&params)
        .map_err(|e| KubeError::from_kube(&scope, kube::Error::BuildRequest(e)))?;
    let response = client
        .send(request.map(Body::from))
        .await
        .map_err(|e| KubeError::from_kube(&scope, e))?;
    let code = response.status();
    let retry_after = crate::retry::retry_after_header(response.headers());
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| KubeError::from_kube(&scope, e))?;
    if !code.is_success() {
        // A `Status` object when the API server wrote one; its text otherwise.
        let status = serde_json::from_slice::<Status>(&body).unwrap_or_else(|_| {
            Status::failure(String::from_utf8_lossy(&body).trim(), "").with_code(code.as_u16())
        });
        let error = KubeError::from_kube(&scope, kube::Error::Api(status.boxed()));
        return Err(error.with_retry_after(retry_after));
    }
    let list: ObjectList<K> = serde_json::from_slice(&body)
        .map_err(|e| KubeError::from_kube(&scope, kube::Error::SerdeError(e)))?;
    Ok(Page {
        items: list.items,
        next: list.metadata.continue_.filter(|t| !t.is_empty()),
    })
}
