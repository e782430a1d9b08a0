//! Logging in to a real OpenBao with ServiceAccount tokens from the Kubernetes API
//! double. These check our Vault client and, just as much, the double: OpenBao's own
//! kubernetes auth method calls TokenReview on it, and its jwt auth method checks the
//! double's signatures through JWKS or a public key.

use secrecy::SecretString;
use secret_zero::testing::error::{Error, Hinted, exit};
use secret_zero::testing::vault::{AuthMethod, Client, VaultConfig, VaultError};
use secret_zero_testbed::kube_double::KubeDouble;
use secret_zero_testbed::openbao::OpenBao;
use secret_zero_testbed::wiring::{self, JwtKeys};

fn client(addr: &str) -> Client {
    Client::new(&VaultConfig {
        addr: addr.to_string(),
        ca_cert: None,
        namespace: None,
        timeout: std::time::Duration::from_secs(10),
        keep_alive: false,
    })
    .unwrap()
}

/// OpenBao with kubernetes auth pointed at the double, and a role for shop/app.
fn kubernetes_bed() -> (OpenBao, KubeDouble) {
    let double = KubeDouble::start();
    double.create_service_account("shop", "app");
    double.create_service_account("shop", "other");

    let bao = OpenBao::start();
    bao.write_policy(
        "shop-app",
        r#"path "transit/decrypt/shop-app" { capabilities = ["update"] }"#,
    );
    wiring::kubernetes_auth(&bao, &double);
    wiring::kubernetes_role(&bao, "shop-app", "shop", "app", &["shop-app"]);
    (bao, double)
}

async fn login(
    bao: &OpenBao,
    method: AuthMethod,
    mount: &str,
    jwt: String,
) -> Result<secret_zero::testing::vault::Login, VaultError> {
    client(bao.addr())
        .login(method, mount, "shop-app", &SecretString::from(jwt))
        .await
}

#[tokio::test]
async fn kubernetes_auth_accepts_the_bound_service_account() {
    let (bao, double) = kubernetes_bed();
    let jwt = double.issue_token("shop", "app", &["vault"], 600);
    let login = login(&bao, AuthMethod::Kubernetes, "kubernetes", jwt.clone())
        .await
        .unwrap();
    assert!(
        login.policies.contains(&"shop-app".to_string()),
        "{:?}",
        login.policies
    );
    assert_eq!(login.lease_duration, 10);
    // The double really was asked: OpenBao reviewed the token there.
    assert!(
        double.requests().iter().any(|r| r.contains("tokenreviews")),
        "{:?}",
        double.requests()
    );
    let vault = client(bao.addr());
    let info = vault.lookup_self(&login.token).await.unwrap();
    assert_eq!(info.accessor, login.accessor);
    assert!(!format!("{login:?}").contains(&jwt));
    vault.revoke_self(&login.token).await.unwrap();
}

#[tokio::test]
async fn kubernetes_auth_refuses_another_service_account() {
    let (bao, double) = kubernetes_bed();
    let jwt = double.issue_token("shop", "other", &["vault"], 600);
    kubernetes_login_refused(&bao, &jwt).await;
}

#[tokio::test]
async fn kubernetes_auth_refuses_an_expired_token() {
    let (bao, double) = kubernetes_bed();
    let jwt = double.issue_token("shop", "app", &["vault"], -3600);
    kubernetes_login_refused(&bao, &jwt).await;
}

#[tokio::test]
async fn kubernetes_auth_refuses_the_wrong_audience() {
    let (bao, double) = kubernetes_bed();
    let jwt = double.issue_token("shop", "app", &["not-vault"], 600);
    kubernetes_login_refused(&bao, &jwt).await;
}

#[tokio::test]
async fn kubernetes_auth_refuses_a_deleted_service_account() {
    let (bao, double) = kubernetes_bed();
    let jwt = double.issue_token("shop", "app", &["vault"], 600);
    double.delete_service_account("shop", "app");
    kubernetes_login_refused(&bao, &jwt).await;
}

/// OpenBao with jwt auth trusting the double (through its JWKS endpoint or its
/// signing public key) and a role for shop/app.
fn jwt_bed(keys: JwtKeys) -> (OpenBao, KubeDouble) {
    let double = KubeDouble::start();
    double.create_service_account("shop", "app");
    double.create_service_account("shop", "other");
    let bao = OpenBao::start();
    wiring::jwt_auth(&bao, &double, keys);
    wiring::jwt_role(&bao, "shop-app", "shop", "app", &["default"]);
    (bao, double)
}

#[tokio::test]
async fn jwt_auth_through_jwks_accepts_and_refuses_like_kubernetes() {
    let (bao, double) = jwt_bed(JwtKeys::Jwks);
    let good = double.issue_token("shop", "app", &["vault"], 600);
    let login = login(&bao, AuthMethod::Jwt, "jwt", good).await.unwrap();
    assert_eq!(login.lease_duration, 10);
    assert!(
        double
            .requests()
            .iter()
            .any(|r| r.contains("/openid/v1/jwks"))
    );

    for jwt in [
        double.issue_token("shop", "other", &["vault"], 600),
        double.issue_token("shop", "app", &["vault"], -3600),
        double.issue_token("shop", "app", &["not-vault"], 600),
    ] {
        let err = login_err(&bao, &jwt).await;
        assert_login_refused(err, &jwt);
    }
}

#[tokio::test]
async fn jwt_auth_with_the_public_key_accepts_and_refuses() {
    let (bao, double) = jwt_bed(JwtKeys::PublicKey);
    let good = double.issue_token("shop", "app", &["vault"], 600);
    login(&bao, AuthMethod::Jwt, "jwt", good).await.unwrap();
    // A token signed by another cluster's key is refused too.
    let stranger = KubeDouble::start();
    stranger.create_service_account("shop", "app");
    for jwt in [
        double.issue_token("shop", "other", &["vault"], 600),
        double.issue_token("shop", "app", &["vault"], -3600),
        double.issue_token("shop", "app", &["not-vault"], 600),
        stranger.issue_token("shop", "app", &["vault"], 600),
    ] {
        let err = login_err(&bao, &jwt).await;
        assert_login_refused(err, &jwt);
    }
}

/// A kubernetes auth login with `jwt` is refused, as [`assert_login_refused`] says.
async fn kubernetes_login_refused(bao: &OpenBao, jwt: &str) {
    let err = login(bao, AuthMethod::Kubernetes, "kubernetes", jwt.to_string())
        .await
        .unwrap_err();
    assert_login_refused(err, jwt);
}

async fn login_err(bao: &OpenBao, jwt: &str) -> VaultError {
    login(bao, AuthMethod::Jwt, "jwt", jwt.to_string())
        .await
        .unwrap_err()
}

/// A refused login is a 4xx on the login path, exit code 4, and never echoes the JWT.
fn assert_login_refused(err: VaultError, jwt: &str) {
    match &err {
        VaultError::LoginRefused { path, .. } => assert!(path.ends_with("/login"), "{path}"),
        other => panic!("expected a refused login, got {other:?}"),
    }
    let err = Error::from(err);
    assert_eq!(err.exit_code(), exit::VAULT_AUTH, "{err}");
    assert!(err.hint().is_some());
    let line = err.one_line();
    assert!(
        !line.contains(jwt) && !format!("{err:?}").contains(jwt),
        "JWT leaked: {line}"
    );
}
