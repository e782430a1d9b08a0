//! The Kubernetes API double, checked by clients nobody here wrote: kubectl (which
//! sends protobuf for typed commands), the `kube` crate, plain HTTPS for TokenReview,
//! and the standalone `kube-double` binary driven by kubectl.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use secret_zero_testbed::bin;
use secret_zero_testbed::cmd::{Cmd, Sink};
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::kubectl::Kubectl;
use secret_zero_testbed::wait::Poll;
use serde_json::{Value, json};

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// The claims of a JWT, unverified (verification is the TokenReview tests' job).
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.trim().split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

fn review(double: &KubeDouble, caller: &str, token: &str, audiences: &[&str]) -> (u16, Value) {
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": { "token": token, "audiences": audiences },
    });
    double.call("POST", TOKEN_REVIEWS, Some(caller), Some(&body))
}

#[test]
fn kubectl_manages_secrets() {
    let double = KubeDouble::start();
    let kubectl = Kubectl::admin(&double);

    // Typed command: kubectl sends this one as protobuf.
    let out = kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "app-secrets",
        "--from-literal=user=alice",
    ]);
    assert_eq!(out.trim(), "secret/app-secrets created");
    let stored = double.secret("default", "app-secrets").expect("stored");
    assert_eq!(stored["data"]["user"], "YWxpY2U=");
    assert_eq!(stored["type"], "Opaque");

    let table = kubectl.ok(&["get", "secrets"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("app-secrets   Opaque   1"), "{table}");
    let fetched: Value =
        serde_json::from_str(&kubectl.ok(&["get", "secret", "app-secrets", "-o", "json"])).unwrap();
    assert_eq!(fetched["metadata"]["uid"], stored["metadata"]["uid"]);

    // Untyped: JSON body, validated on the server (kubectl's --validate=strict).
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": "from-file", "labels": { "app": "shop" } },
        "stringData": { "greeting": "hello" },
    });
    let file = kubectl.write("secret.json", &manifest);
    assert_eq!(
        kubectl.ok(&["create", "-f", &file]).trim(),
        "secret/from-file created"
    );
    let created = double.secret("default", "from-file").expect("created");
    assert_eq!(created["data"]["greeting"], "aGVsbG8=");
    assert!(created.get("stringData").is_none());
    let again = kubectl.fails(&["create", "-f", &file]);
    assert!(
        again.contains(r#"(AlreadyExists)"#)
            && again.contains(r#"secrets "from-file" already exists"#),
        "{again}"
    );

    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut replacement = manifest.clone();
    replacement["metadata"]["resourceVersion"] = json!(rv);
    replacement["stringData"]["greeting"] = json!("bonjour");
    let file = kubectl.write("replace.json", &replacement);
    assert_eq!(
        kubectl.ok(&["replace", "-f", &file]).trim(),
        "secret/from-file replaced"
    );
    let replaced = double.secret("default", "from-file").unwrap();
    assert_eq!(replaced["data"]["greeting"], "Ym9uam91cg==");
    assert_ne!(replaced["metadata"]["resourceVersion"], json!(rv));
    assert_eq!(replaced["metadata"]["uid"], created["metadata"]["uid"]);

    // The same file again carries the now stale resourceVersion.
    let stale = kubectl.fails(&["replace", "-f", &file]);
    assert!(
        stale.contains(
            r#"Error from server (Conflict): error when replacing "#
        ) && stale.contains(
            r#"Operation cannot be fulfilled on secrets "from-file": the object has been modified; please apply your changes to the latest version and try again"#
        ),
        "{stale}"
    );

    // A server-side typo check, as fieldValidation=Strict does.
    let typo = kubectl.write(
        "typo.json",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "stringdata": {}}),
    );
    let rejected = kubectl.fails(&["create", "-f", &typo]);
    assert!(
        rejected.contains(r#"strict decoding error: unknown field "stringdata""#),
        "{rejected}"
    );

    assert_eq!(
        kubectl.ok(&["delete", "secret", "from-file"]).trim(),
        r#"secret "from-file" deleted"#
    );
    assert!(double.secret("default", "from-file").is_none());
    let gone = kubectl.fails(&["get", "secret", "from-file"]);
    assert!(
        gone.contains(r#"Error from server (NotFound): secrets "from-file" not found"#),
        "{gone}"
    );

    let log = double.requests();
    assert!(
        log.contains(&"POST /api/v1/namespaces/default/secrets".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"PUT /api/v1/namespaces/default/secrets/from-file".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"DELETE /api/v1/namespaces/default/secrets/from-file".to_string()),
        "{log:?}"
    );
    assert_eq!(double.request_count(), log.len() as u64);
}

#[test]
fn kubectl_create_token_carries_the_real_claims() {
    let double = KubeDouble::start();
    let uid = double.create_service_account("shop", "app");
    let kubectl = Kubectl::admin(&double);

    let token = kubectl.ok(&[
        "create",
        "token",
        "app",
        "-n",
        "shop",
        "--audience",
        "vault",
    ]);
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], json!(["vault"]));
    assert_eq!(claims["iss"], json!(double.issuer()));
    assert_eq!(claims["sub"], "system:serviceaccount:shop:app");
    assert_eq!(claims["kubernetes.io"]["namespace"], "shop");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"],
        json!({"name": "app", "uid": uid})
    );
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], double.jwks()["keys"][0]["kid"]);

    // And the signature holds: the double's TokenReview accepts it for vault.
    let (code, reviewed) = review(&double, &double.admin_token(), token.trim(), &["vault"]);
    assert_eq!(code, 201);
    assert_eq!(reviewed["status"]["authenticated"], true, "{reviewed}");

    let too_short = kubectl.fails(&["create", "token", "app", "-n", "shop", "--duration=1m"]);
    assert!(
        too_short.contains(r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#),
        "{too_short}"
    );
    let missing = kubectl.fails(&["create", "token", "nobody", "-n", "shop"]);
    assert!(
        missing.contains(r#"serviceaccounts "nobody" not found"#),
        "{missing}"
    );

    // ServiceAccounts created through kubectl (protobuf again) can get tokens too.
    kubectl.ok(&["create", "serviceaccount", "robot", "-n", "shop"]);
    let robot = jwt_claims(&kubectl.ok(&["create", "token", "robot", "-n", "shop"]));
    assert_eq!(
        robot["aud"],
        json!([double.issuer()]),
        "default audience is the API server's"
    );
}

#[test]
fn kubectl_with_a_bad_token_is_unauthorized() {
    let double = KubeDouble::start();
    // kubectl words a 401 "(Unauthorized)" or, when discovery is what got it, "(the
    // server has asked for the client to provide credentials)"; both mean a 401 Status.
    let logged_out = "error: You must be logged in to the server";
    let err = Kubectl::new(&double, "not-a-token").fails(&["get", "secrets"]);
    assert!(err.contains(logged_out), "{err}");

    // A real token for another audience does not open the API either.
    double.create_service_account("shop", "app");
    let vault_only = double.issue_token("shop", "app", &["vault"], 3600);
    let err = Kubectl::new(&double, &vault_only).fails(&["get", "secrets"]);
    assert!(err.contains(logged_out), "{err}");

    // With discovery cached from an earlier good login, the 401 comes from the GET itself.
    let kubectl = Kubectl::admin(&double);
    kubectl.ok(&["get", "secrets"]);
    double.write_kubeconfig(kubectl.kubeconfig(), "not-a-token");
    let err = kubectl.fails(&["get", "secrets"]);
    assert!(
        err.contains("error: You must be logged in to the server (Unauthorized)"),
        "{err}"
    );
}

#[test]
fn kubectl_is_forbidden_what_rbac_does_not_grant() {
    let double = KubeDouble::start();
    double.put_secret(
        json!({"metadata": {"name": "app-secrets", "namespace": "shop"}, "stringData": {"k": "v"}}),
    );
    double.put_secret(
        json!({"metadata": {"name": "other", "namespace": "shop"}, "stringData": {"k": "v"}}),
    );
    double.create_service_account("shop", "app");
    let token = double.issue_token("shop", "app", &[], 3600);
    let kubectl = Kubectl::new(&double, &token);

    let err = kubectl.fails(&["get", "secret", "app-secrets", "-n", "shop"]);
    assert!(
        err.contains(r#"Error from server (Forbidden): secrets "app-secrets" is forbidden: User "system:serviceaccount:shop:app" cannot get resource "secrets" in API group "" in the namespace "shop""#),
        "{err}"
    );

    double.grant(
        "shop",
        "app",
        Rule::new(&["get"], &["secrets"]).names(&["app-secrets"]),
    );
    assert!(
        kubectl
            .ok(&["get", "secret", "app-secrets", "-n", "shop", "-o", "name"])
            .contains("secret/app-secrets")
    );
    let err = kubectl.fails(&["get", "secret", "other", "-n", "shop"]);
    assert!(err.contains(r#"secrets "other" is forbidden"#), "{err}");
    let err = kubectl.fails(&["get", "secrets", "-n", "shop"]);
    assert!(
        err.contains(r#"cannot list resource "secrets" in API group "" in the namespace "shop""#),
        "{err}"
    );
    let err = kubectl.fails(&["create", "token", "app", "-n", "shop"]);
    assert!(err.contains(r#"cannot create resource "serviceaccounts/token" in API group "" in the namespace "shop""#), "{err}");
}

#[test]
fn kubectl_lists_pods() {
    let double = KubeDouble::start();
    // A pod with a native sidecar, as a kubelet reports it once both are up.
    double.put_pod(json!({
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "initContainers": [{"name": "sidecar", "image": "sidecar:1", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "shop/app:1.0"}],
        },
        "status": {
            "phase": "Running",
            "initContainerStatuses": [{"name": "sidecar", "ready": true, "restartCount": 1}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2}],
        },
    }));
    double.put_pod(json!({
        "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"containers": [{"name": "db", "image": "postgres"}]},
    }));
    double.put_pod(json!({
        "metadata": {"name": "teller", "namespace": "bank"},
        "spec": {"containers": [{"name": "app", "image": "bank/teller:2"}]},
    }));
    let kubectl = Kubectl::admin(&double);

    let table = kubectl.ok(&["get", "pods", "-n", "shop"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert_eq!(rows[1][..4], ["db", "0/1", "Pending", "0"], "{table}");
    assert_eq!(rows[2][..4], ["web", "2/2", "Running", "3"], "{table}");

    // Every namespace, one pod a request (kubectl follows `continue`), and the short name.
    let names = kubectl.ok(&["get", "po", "-A", "--chunk-size=1", "-o", "name"]);
    assert_eq!(names, "pod/teller\npod/db\npod/web\n");
    let pages = double
        .requests()
        .iter()
        .filter(|r| r.as_str() == "GET /api/v1/pods")
        .count();
    assert_eq!(pages, 3, "{:?}", double.requests());

    let listed: Value = serde_json::from_str(
        &kubectl.ok(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "json"]),
    )
    .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let pod = &listed["items"][0];
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["spec"]["initContainers"][0]["restartPolicy"], "Always");
    // The defaults the API server fills in.
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let phase = kubectl.ok(&[
        "get",
        "pod",
        "db",
        "-n",
        "shop",
        "-o",
        "jsonpath={.status.phase} {.spec.containers[0].imagePullPolicy}",
    ]);
    assert_eq!(phase, "Pending Always");

    // Without `list pods`, a ServiceAccount gets the authorizer's 403.
    double.create_service_account("ops", "auditor");
    let auditor = Kubectl::new(&double, &double.issue_token("ops", "auditor", &[], 3600));
    let err = auditor.fails(&["get", "pods", "-n", "shop"]);
    assert!(
        err.contains(r#"Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:ops:auditor" cannot list resource "pods" in API group "" in the namespace "shop""#),
        "{err}"
    );
    let err = auditor.fails(&["get", "pods", "-A"]);
    assert!(
        err.contains(r#"cannot list resource "pods" in API group "" at the cluster scope"#),
        "{err}"
    );
    double.grant(
        "ops",
        "auditor",
        Rule::new(&["list"], &["pods"]).cluster_wide(),
    );
    assert_eq!(
        auditor.ok(&["get", "pods", "-n", "bank", "-o", "name"]),
        "pod/teller\n"
    );
}

async fn kube_client(double: &KubeDouble, dir: &Path) -> Client {
    // The test build enables both rustls providers; pick ours before kube builds TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = double.admin_kubeconfig(dir);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kube config");
    Client::try_from(config).expect("kube client")
}

fn api_error(err: kube::Error) -> (u16, String, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason.clone(), status.message.clone()),
        other => panic!("expected an API Status, got {other}"),
    }
}

#[tokio::test]
async fn kube_crate_reads_lists_and_updates_with_resource_versions() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let client = kube_client(&double, dir.path()).await;
    for (name, labels) in [
        (
            "a",
            json!({"app.kubernetes.io/managed-by": "secret-zero", "tier": "web"}),
        ),
        (
            "b",
            json!({"app.kubernetes.io/managed-by": "secret-zero", "tier": "db"}),
        ),
        ("c", json!({"tier": "web"})),
    ] {
        double.put_secret(json!({"metadata": {"name": name, "namespace": "shop", "labels": labels}, "stringData": {"k": name}}));
    }
    double.put_secret(json!({"metadata": {"name": "elsewhere", "namespace": "other", "labels": {"app.kubernetes.io/managed-by": "secret-zero"}}}));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let a = secrets.get("a").await.expect("get a");
    assert_eq!(a.data.unwrap()["k"].0, b"a");

    let names = |list: kube::core::ObjectList<Secret>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect()
    };
    let managed = secrets
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=secret-zero"))
        .await
        .unwrap();
    assert_eq!(names(managed), ["a", "b"]);
    let web = secrets
        .list(&ListParams::default().labels("tier in (web),app.kubernetes.io/managed-by"))
        .await
        .unwrap();
    assert_eq!(names(web), ["a"]);
    let unmanaged = secrets
        .list(&ListParams::default().labels("!app.kubernetes.io/managed-by"))
        .await
        .unwrap();
    assert_eq!(names(unmanaged), ["c"]);
    let everywhere: Api<Secret> = Api::all(client.clone());
    let all = everywhere
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=secret-zero"))
        .await
        .unwrap();
    assert_eq!(
        names(all),
        ["elsewhere", "a", "b"],
        "key order: namespace, then name"
    );

    // Optimistic concurrency: the first replace wins, the second (same old RV) conflicts.
    let mut first = secrets.get("b").await.unwrap();
    let mut second = first.clone();
    first.string_data = Some([("k".to_string(), "new".to_string())].into());
    let saved = secrets
        .replace("b", &PostParams::default(), &first)
        .await
        .expect("replace");
    assert_ne!(
        saved.metadata.resource_version,
        second.metadata.resource_version
    );
    second.string_data = Some([("k".to_string(), "lost".to_string())].into());
    let (code, reason, message) = api_error(
        secrets
            .replace("b", &PostParams::default(), &second)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        message,
        "Operation cannot be fulfilled on secrets \"b\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(double.secret("shop", "b").unwrap()["data"]["k"], "bmV3");

    let patch = json!({"metadata": {"annotations": {"secret-zero.dev/binding": "identity"}}});
    let patched = secrets
        .patch("b", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("merge patch");
    assert_eq!(
        patched.metadata.annotations.unwrap()["secret-zero.dev/binding"],
        "identity"
    );

    let (code, reason, _) = api_error(
        secrets
            .create(&PostParams::default(), &a_copy(&secrets).await)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    let (code, reason, message) = api_error(secrets.get("missing").await.unwrap_err());
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "secrets \"missing\" not found")
    );
}

/// Secret `a` stripped of server metadata, ready to be created again.
async fn a_copy(secrets: &Api<Secret>) -> Secret {
    let mut a = secrets.get("a").await.unwrap();
    a.metadata.resource_version = None;
    a.metadata.uid = None;
    a.metadata.creation_timestamp = None;
    a
}

#[test]
fn token_review_follows_the_real_audience_and_validity_rules() {
    let double = KubeDouble::start();
    let uid = double.create_service_account("shop", "app");
    let admin = double.admin_token();
    let vault_token = double.issue_token("shop", "app", &["vault"], 3600);

    let (code, ok) = review(&double, &admin, &vault_token, &["vault", "other"]);
    assert_eq!(code, 201);
    assert_eq!(ok["kind"], "TokenReview");
    assert_eq!(ok["spec"]["token"], json!(vault_token));
    let status = &ok["status"];
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["audiences"], json!(["vault"]));
    assert_eq!(status["user"]["username"], "system:serviceaccount:shop:app");
    assert_eq!(status["user"]["uid"], json!(uid));
    assert_eq!(
        status["user"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:shop",
            "system:authenticated"
        ])
    );
    let jti = jwt_claims(&vault_token)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={jti}")])
    );

    // No audiences asked for: the token must carry the API server's own.
    let (_, implicit) = review(&double, &admin, &vault_token, &[]);
    assert!(
        implicit["status"].get("authenticated").is_none(),
        "{implicit}"
    );
    assert_eq!(
        implicit["status"]["error"],
        format!(
            "[invalid bearer token, token audiences [\"vault\"] is invalid for the target audiences [\"{}\"]]",
            double.issuer()
        )
    );
    let api_token = double.issue_token("shop", "app", &[], 3600);
    let (_, implicit_ok) = review(&double, &admin, &api_token, &[]);
    assert_eq!(implicit_ok["status"]["audiences"], json!([double.issuer()]));

    let (code, wrong) = review(&double, &admin, &vault_token, &["consul"]);
    assert_eq!(code, 201);
    assert_eq!(wrong["status"]["user"], json!({}));
    assert_eq!(
        wrong["status"]["error"],
        "[invalid bearer token, token audiences [\"vault\"] is invalid for the target audiences [\"consul\"]]"
    );

    // Expired beyond the API server's 60 s leeway; within it still accepted.
    let expired = double.issue_token("shop", "app", &["vault"], -120);
    let (_, rejected) = review(&double, &admin, &expired, &["vault"]);
    assert_eq!(
        rejected["status"]["error"],
        "[invalid bearer token, service account token has expired]"
    );
    let barely = double.issue_token("shop", "app", &["vault"], -10);
    assert_eq!(
        review(&double, &admin, &barely, &["vault"]).1["status"]["authenticated"],
        true
    );

    let ghost = double.issue_token("shop", "ghost", &["vault"], 3600);
    let (_, unknown) = review(&double, &admin, &ghost, &["vault"]);
    assert_eq!(
        unknown["status"]["error"],
        "[invalid bearer token, serviceaccounts \"ghost\" not found]"
    );

    double.delete_service_account("shop", "app");
    let (_, deleted) = review(&double, &admin, &vault_token, &["vault"]);
    assert_eq!(
        deleted["status"]["error"],
        "[invalid bearer token, serviceaccounts \"app\" not found]"
    );
    let new_uid = double.create_service_account("shop", "app");
    let (_, recreated) = review(&double, &admin, &vault_token, &["vault"]);
    assert_eq!(
        recreated["status"]["error"],
        format!(
            "[invalid bearer token, service account UID ({new_uid}) does not match claim ({uid})]"
        )
    );

    let (_, garbage) = review(&double, &admin, "not-a-jwt", &["vault"]);
    assert_eq!(garbage["status"]["error"], "invalid bearer token");
    let foreign = KubeDouble::start().issue_token("shop", "app", &["vault"], 3600);
    let (_, foreign) = review(&double, &admin, &foreign, &["vault"]);
    assert_eq!(
        foreign["status"]["error"], "invalid bearer token",
        "another issuer's token"
    );
}

#[test]
fn token_review_needs_rbac_and_authentication() {
    let double = KubeDouble::start();
    double.create_service_account("vault", "reviewer");
    double.create_service_account("shop", "app");
    let reviewer = double.issue_token("vault", "reviewer", &[], 3600);
    let app_token = double.issue_token("shop", "app", &["vault"], 3600);

    let (code, body) = review(&double, &reviewer, &app_token, &["vault"]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:vault:reviewer\" cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
    );

    // A namespaced grant cannot cover a cluster-scoped resource; a cluster-wide one can.
    double.grant(
        "vault",
        "reviewer",
        Rule::new(&["create"], &["tokenreviews"]),
    );
    assert_eq!(review(&double, &reviewer, &app_token, &["vault"]).0, 403);
    double.grant(
        "vault",
        "reviewer",
        Rule::new(&["create"], &["tokenreviews"]).cluster_wide(),
    );
    let (code, body) = review(&double, &reviewer, &app_token, &["vault"]);
    assert_eq!(
        (code, &body["status"]["authenticated"]),
        (201, &json!(true)),
        "{body}"
    );

    let (code, body) = review(&double, "garbage", &app_token, &["vault"]);
    assert_eq!((code, &body["reason"]), (401, &json!("Unauthorized")));
    let (code, body) = double.call(
        "POST",
        TOKEN_REVIEWS,
        None,
        Some(&json!({"spec": {"token": app_token}})),
    );
    assert_eq!((code, &body["reason"]), (401, &json!("Unauthorized")));
    let (code, body) = double.call(
        "POST",
        TOKEN_REVIEWS,
        Some(&double.admin_token()),
        Some(&json!({"spec": {}})),
    );
    assert_eq!(
        (code, &body["message"]),
        (
            400,
            &json!("token is required for TokenReview in authentication")
        )
    );
}

#[test]
fn oidc_discovery_is_public_and_matches_the_tokens() {
    let double = KubeDouble::start();
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(&double); // tests hand it to tasks and threads
    let (code, config) = double.call("GET", "/.well-known/openid-configuration", None, None);
    assert_eq!(code, 200);
    assert_eq!(config["issuer"], json!(double.issuer()));
    assert_eq!(
        config["jwks_uri"],
        json!(format!("{}/openid/v1/jwks", double.issuer()))
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let (code, jwks) = double.call("GET", "/openid/v1/jwks", None, None);
    assert_eq!(code, 200);
    assert_eq!(jwks, double.jwks());
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(
        double
            .signing_public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    // The rest of the API is not public.
    let (code, _) = double.call("GET", "/api/v1/namespaces/default/secrets", None, None);
    assert_eq!(code, 401);
    let (code, version) = double.call("GET", "/version", None, None);
    assert_eq!((code, &version["major"]), (200, &json!("1")));
}

#[test]
fn standalone_binary_serves_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Cmd::new(bin::kube_double())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--service-account",
            "shop/app",
            "--grant",
            "shop/app=get,list:secrets",
        ])
        .stdin_piped()
        .stderr(Sink::Inherit)
        .spawn();
    let mut line = String::new();
    BufReader::new(child.child().stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    let url = ready["url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{ready}");
    assert_eq!(ready["issuer"], ready["url"]);
    assert_eq!(ready["kubeconfig"], json!(kubeconfig));
    let ca = std::fs::read_to_string(ready["ca_file"].as_str().unwrap()).expect("CA file");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        ready["service_accounts"]["shop/app"]
            .as_str()
            .unwrap()
            .len(),
        36
    );
    let pem = ready["signing_public_key_pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");

    let kubectl = Kubectl::with_kubeconfig(&kubeconfig);
    let empty = kubectl.run(&["get", "secrets", "-n", "shop"]);
    assert!(empty.success());
    assert_eq!(empty.stderr.trim(), "No resources found in shop namespace.");
    kubectl.ok(&[
        "create",
        "secret",
        "generic",
        "app-secrets",
        "-n",
        "shop",
        "--from-literal=a=b",
    ]);
    let listed = kubectl.ok(&["get", "secrets", "-n", "shop", "-o", "name"]);
    assert_eq!(listed.trim(), "secret/app-secrets");

    // The granted ServiceAccount works at run time too, through kubectl create token.
    let token = kubectl.ok(&["create", "token", "app", "-n", "shop"]);
    let sa_kubeconfig = dir.path().join("app-kubeconfig");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let admin = ready["admin_token"].as_str().unwrap();
    std::fs::write(&sa_kubeconfig, text.replace(admin, token.trim())).unwrap();
    let as_app = Kubectl::with_kubeconfig(&sa_kubeconfig).run(&[
        "get",
        "secret",
        "app-secrets",
        "-n",
        "shop",
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(as_app.stdout, "Yg==", "{}", as_app.stderr);

    // Closing stdin stops it.
    drop(child.child().stdin.take());
    let status = Poll::within(Duration::from_secs(10)).eventually(
        || child.exited(),
        || "kube-double did not stop when stdin closed".into(),
    );
    assert!(status.success(), "kube-double exited with {status}");
}
