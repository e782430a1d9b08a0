//! Kubernetes access: where the API is (in-cluster or kubeconfig) and the Secret
//! operations secret-zero needs, with `resourceVersion` on every write.

mod config;
mod error;
mod secrets;

pub use config::{ClusterSource, DEFAULT_SERVICEACCOUNT_DIR, connect};
pub use error::KubeError;
pub use secrets::Secrets;

pub use k8s_openapi::api::core::v1::Secret;
