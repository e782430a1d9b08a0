//! Secret access through the `kube` crate against the Kubernetes API double, in-cluster
//! and from a kubeconfig, with the faults a real API server answers.

use std::path::Path;

use secret_zero::testing::error::{Error, exit};
use secret_zero::testing::kube::{ClusterSource, KubeError, Secret, Secrets, connect};
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use serde_json::json;

fn seed(double: &KubeDouble, ns: &str, name: &str, labels: serde_json::Value) {
    double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "data": {"ciphertext": "dmF1bHQ6djE6YWJj"},
    }));
}

/// The files kubelet mounts for a pod, for `sa` in `ns`.
fn pod_files(double: &KubeDouble, dir: &Path, ns: &str, sa: &str) -> ClusterSource {
    let token = double.issue_token(ns, sa, &[&double.issuer()], 3600);
    std::fs::write(dir.join("token"), token).unwrap();
    double.write_ca(&dir.join("ca.crt"));
    std::fs::write(dir.join("namespace"), ns).unwrap();
    let url = url::Url::parse(&double.url()).unwrap();
    ClusterSource::InCluster {
        host: url.host_str().unwrap().to_string(),
        port: url.port().unwrap().to_string(),
        dir: dir.to_path_buf(),
    }
}

async fn admin(double: &KubeDouble, dir: &Path) -> Secrets {
    let path = double.admin_kubeconfig(dir);
    let (client, _) = connect(&ClusterSource::Kubeconfig(Some(path)))
        .await
        .unwrap();
    Secrets::new(client)
}

#[tokio::test]
async fn get_list_replace_create_delete_from_a_kubeconfig() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    seed(
        &double,
        "shop",
        "a",
        json!({"app.kubernetes.io/managed-by": "secret-zero"}),
    );
    seed(
        &double,
        "shop",
        "b",
        json!({"app.kubernetes.io/managed-by": "someone-else"}),
    );
    seed(
        &double,
        "bank",
        "c",
        json!({"app.kubernetes.io/managed-by": "secret-zero"}),
    );
    let secrets = admin(&double, dir.path()).await;

    let a = secrets.get("shop", "a").await.unwrap();
    assert_eq!(a.data.unwrap()["ciphertext"].0, b"vault:v1:abc");

    let selector = "app.kubernetes.io/managed-by=secret-zero";
    let mut names: Vec<String> = secrets
        .list(None, selector)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.metadata.name.unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(secrets.list(Some("shop"), selector).await.unwrap().len(), 1);

    // Replace with the version read succeeds; replaying the same stale version conflicts.
    let mut a = secrets.get("shop", "a").await.unwrap();
    let stale = a.clone();
    a.metadata.annotations = Some([("x".to_string(), "1".to_string())].into());
    let written = secrets.replace(&a).await.unwrap();
    assert_ne!(
        written.metadata.resource_version,
        stale.metadata.resource_version
    );
    let err = secrets.replace(&stale).await.unwrap_err();
    assert!(matches!(err, KubeError::Conflict { .. }), "{err:?}");
    assert_eq!(Error::from(err).exit_code(), exit::KUBE_CONFLICT);

    // A replace without a resourceVersion is refused before it can overwrite blindly.
    let mut blind = written.clone();
    blind.metadata.resource_version = None;
    assert!(matches!(
        secrets.replace(&blind).await.unwrap_err(),
        KubeError::Config(_)
    ));

    let mut new = Secret::default();
    new.metadata.namespace = Some("shop".into());
    new.metadata.name = Some("fresh".into());
    secrets.create(&new).await.unwrap();
    let err = secrets.create(&new).await.unwrap_err();
    assert!(matches!(err, KubeError::AlreadyExists { .. }), "{err:?}");

    secrets.delete("shop", "fresh").await.unwrap();
    let err = secrets.get("shop", "fresh").await.unwrap_err();
    assert!(matches!(err, KubeError::NotFound { .. }), "{err:?}");
    assert_eq!(Error::from(err).exit_code(), exit::KUBE_DENIED);
}

#[tokio::test]
async fn in_cluster_uses_the_pods_token_and_rbac() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    double.create_service_account("shop", "app");
    double.grant(
        "shop",
        "app",
        Rule::new(&["get"], &["secrets"]).names(&["a"]),
    );
    seed(&double, "shop", "a", json!({}));
    seed(&double, "shop", "b", json!({}));

    let (client, namespace) = connect(&pod_files(&double, dir.path(), "shop", "app"))
        .await
        .unwrap();
    assert_eq!(namespace, "shop");
    let secrets = Secrets::new(client);
    secrets.get("shop", "a").await.unwrap();

    let err = secrets.get("shop", "b").await.unwrap_err();
    match &err {
        KubeError::Forbidden { message, .. } => {
            assert!(
                message.contains("system:serviceaccount:shop:app"),
                "{message}"
            )
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(err.hint().unwrap().contains("Role"));
    let err = secrets.list(Some("shop"), "").await.unwrap_err();
    assert!(matches!(err, KubeError::Forbidden { .. }), "{err:?}");
}

#[tokio::test]
async fn a_token_the_server_does_not_know_is_unauthorized() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    double.write_kubeconfig(&path, "not-a-token");
    let (client, _) = connect(&ClusterSource::Kubeconfig(Some(path)))
        .await
        .unwrap();
    let err = Secrets::new(client).get("shop", "a").await.unwrap_err();
    assert!(matches!(err, KubeError::Unauthorized { .. }), "{err:?}");
    assert_eq!(Error::from(err).exit_code(), exit::KUBE_DENIED);
}

#[tokio::test]
async fn missing_configuration_is_a_clear_input_error() {
    let Err(err) = connect(&ClusterSource::Kubeconfig(Some(
        "/nonexistent/kubeconfig".into(),
    )))
    .await
    else {
        panic!("a missing kubeconfig was accepted");
    };
    assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
    assert_eq!(Error::from(err).exit_code(), exit::INPUT);

    let dir = tempfile::tempdir().unwrap();
    let source = ClusterSource::InCluster {
        host: "127.0.0.1".into(),
        port: "1".into(),
        dir: dir.path().to_path_buf(),
    };
    let Err(err) = connect(&source).await else {
        panic!("in-cluster without files was accepted");
    };
    assert!(err.to_string().contains("ca.crt"), "{err}");
}

#[tokio::test]
async fn an_unreachable_api_is_transient() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let secrets = admin(&double, dir.path()).await;
    drop(double);
    let err = secrets.get("shop", "a").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(Error::from(err).exit_code(), exit::KUBE_UNAVAILABLE);
}

#[tokio::test]
async fn a_large_list_comes_in_pages_of_500() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let managed = json!({"app.kubernetes.io/managed-by": "secret-zero"});
    for i in 0..1203 {
        let ns = if i % 2 == 0 { "shop" } else { "bank" };
        seed(&double, ns, &format!("s-{i:04}"), managed.clone());
    }
    seed(&double, "shop", "other", json!({"app": "x"}));
    let secrets = admin(&double, dir.path()).await;
    let selector = "app.kubernetes.io/managed-by=secret-zero";

    let all = secrets.list(None, selector).await.unwrap();
    assert_eq!(all.len(), 1203);
    let mut names: Vec<_> = all
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        1203,
        "a page boundary lost or repeated a Secret"
    );
    assert_eq!(secrets.requests(), 3, "1203 Secrets are three pages of 500");

    let shop = secrets.list(Some("shop"), selector).await.unwrap();
    assert_eq!(shop.len(), 602);
    assert_eq!(secrets.requests(), 5);
}
