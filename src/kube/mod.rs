//! Kubernetes access: where the API is (in-cluster or kubeconfig) and the Secret
//! operations secret-zero needs, with `resourceVersion` on every write; ConfigMap reads
//! for the development source.

mod config;
mod configmaps;
mod error;
mod page;
mod pods;
mod secrets;

pub use config::{ClusterSource, KUBE_API_VOLUME, connect};
pub use configmaps::ConfigMaps;
pub use error::KubeError;
pub use pods::{Container, Pod, Pods};
pub use secrets::Secrets;

pub use k8s_openapi::api::core::v1::Secret;
