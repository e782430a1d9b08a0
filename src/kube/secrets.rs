//! Secret get/list/create/replace/delete. Writes always carry the `resourceVersion`
//! that was read, so a concurrent change is a [`KubeError::Conflict`], never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::api::{Api, DeleteParams, PostParams, Preconditions};

use super::Secret;
use super::error::KubeError;
use super::page::{Page, list_page};

/// Secrets a list request asks for at once.
pub const LIST_PAGE: u32 = crate::env::DEFAULT_PAGE_SIZE;

/// One page of a Secret list.
pub type SecretPage = Page<Secret>;

/// Secrets through one client.
#[derive(Clone)]
pub struct Secrets {
    client: kube::Client,
    /// API requests made through this value and its clones.
    requests: Arc<AtomicU64>,
}

fn object(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Secrets {
    pub fn new(client: kube::Client) -> Secrets {
        Secrets {
            client,
            requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many API requests were made through this value and its clones.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn api(&self, namespace: &str) -> Api<Secret> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Read one Secret.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Secret, KubeError> {
        self.api(namespace)
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(&object(namespace, name), e))
    }

    /// List Secrets matching `selector` (label selector syntax) in one namespace, or in
    /// all namespaces when `namespace` is `None`, [`LIST_PAGE`] at a time (`limit` and
    /// `continue`, as kubectl pages), so that no single request asks a large cluster's
    /// API server for every Secret at once. All pages end up in memory: a caller that
    /// may meet many Secrets walks [`Secrets::page`] instead.
    pub async fn list(
        &self,
        namespace: Option<&str>,
        selector: &str,
    ) -> Result<Vec<Secret>, KubeError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .page(namespace, selector, LIST_PAGE, next.as_deref())
                .await?;
            items.extend(page.items);
            next = page.next;
            if next.is_none() {
                return Ok(items);
            }
        }
    }

    /// At most `limit` Secrets matching `selector` in one namespace, or in all
    /// namespaces when `namespace` is `None`, starting where `continue_token` (from the
    /// previous page) says. An expired token is a refusal with
    /// [`KubeError::is_expired`]: start again without one.
    pub async fn page(
        &self,
        namespace: Option<&str>,
        selector: &str,
        limit: u32,
        continue_token: Option<&str>,
    ) -> Result<SecretPage, KubeError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let selector = Some(selector).filter(|s| !s.is_empty());
        list_page(
            &self.client,
            "secrets",
            namespace,
            selector,
            limit,
            continue_token,
        )
        .await
    }

    /// Create a Secret; an existing one is [`KubeError::AlreadyExists`].
    pub async fn create(&self, secret: &Secret) -> Result<Secret, KubeError> {
        let (namespace, name) = names(secret)?;
        self.api(namespace)
            .create(&PostParams::default(), secret)
            .await
            .map_err(|e| KubeError::from_kube(&object(namespace, name), e))
    }

    /// Replace a Secret. It must carry the `resourceVersion` it was read at: a stale one
    /// is a [`KubeError::Conflict`], and a missing one is refused here rather than
    /// turned into a blind overwrite.
    pub async fn replace(&self, secret: &Secret) -> Result<Secret, KubeError> {
        let (namespace, name) = names(secret)?;
        if secret
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            return Err(KubeError::Config(format!(
                "refusing to replace {} without a resourceVersion",
                object(namespace, name)
            )));
        }
        self.api(namespace)
            .replace(name, &PostParams::default(), secret)
            .await
            .map_err(|e| KubeError::from_kube(&object(namespace, name), e))
    }

    /// Delete a Secret.
    pub async fn delete(&self, namespace: &str, name: &str) -> Result<(), KubeError> {
        self.api(namespace)
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(|e| KubeError::from_kube(&object(namespace, name), e))
    }
}

impl Secrets {
    /// Delete exactly this version of a Secret: refused (Conflict) if it changed or was
    /// replaced since it was read, so a rollback never removes someone else's write.
    pub async fn delete_exact(&self, secret: &Secret) -> Result<(), KubeError> {
        let (namespace, name) = names(secret)?;
        let params = DeleteParams::default().preconditions(Preconditions {
            resource_version: secret.metadata.resource_version.clone(),
            uid: secret.metadata.uid.clone(),
        });
        self.api(namespace)
            .delete(name, &params)
            .await
            .map(|_| ())
            .map_err(|e| KubeError::from_kube(&object(namespace, name), e))
    }
}

fn names(secret: &Secret) -> Result<(&str, &str), KubeError> {
    let namespace = secret.metadata.namespace.as_deref().unwrap_or("");
    let name = secret.metadata.name.as_deref().unwrap_or("");
    if namespace.is_empty() || name.is_empty() {
        return Err(KubeError::Config(
            "a Secret needs metadata.namespace and metadata.name".into(),
        ));
    }
    Ok((namespace, name))
}
