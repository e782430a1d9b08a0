//! The Vault client against a real OpenBao dev server: Transit, tokens, errors, TLS
//! and namespaces. Transport faults a healthy server cannot produce on demand come
//! from a canned-response server.

use std::time::Duration;

use secret_zero::Plaintext;
use secret_zero::testing::error::{Error, Hinted, exit};
use secret_zero::testing::vault::{
    BatchItem, Client, KeyConfig, VaultConfig, VaultError, VaultToken, ciphertext_version,
};
use secret_zero_testbed::certs::TestCa;
use secret_zero_testbed::faults::{FaultServer, closed_addr, silent_addr};
use secret_zero_testbed::openbao::{OpenBao, TlsListener};
use serde_json::json;

fn config(addr: &str) -> VaultConfig {
    VaultConfig {
        addr: addr.to_string(),
        ca_cert: None,
        namespace: None,
        timeout: Duration::from_secs(5),
        keep_alive: false,
    }
}

fn client(addr: &str) -> Client {
    Client::new(&config(addr)).expect("client")
}

/// Encrypt `text` with the key `shop-app` as `token`, bound to `context` when given.
async fn encrypt(vault: &Client, token: &VaultToken, text: &[u8], context: Option<&str>) -> String {
    let plaintext = Plaintext::new(text.to_vec());
    vault
        .encrypt(token, "transit", "shop-app", &plaintext, context)
        .await
        .unwrap()
}

/// A server with transit mounted and one key.
fn bao_with_key(derived: bool) -> (OpenBao, VaultToken) {
    let bao = OpenBao::start();
    bao.enable_transit("transit");
    bao.create_key("transit", "shop-app", derived);
    let token = VaultToken::new(bao.root_token());
    (bao, token)
}

#[tokio::test]
async fn encrypt_then_decrypt_round_trips() {
    let (bao, root) = bao_with_key(false);
    let vault = client(bao.addr());
    let secret = Plaintext::new(br#"{"db_password":"s3cr3t"}"#.to_vec());
    let ct = vault
        .encrypt(&root, "transit", "shop-app", &secret, None)
        .await
        .unwrap();
    assert_eq!(ciphertext_version(&ct), Some(1), "{ct}");
    let back = vault
        .decrypt(&root, "transit", "shop-app", &ct, None)
        .await
        .unwrap();
    assert_eq!(back.expose(), secret.expose());
}

#[tokio::test]
async fn derived_key_binds_ciphertext_to_its_context() {
    let (bao, root) = bao_with_key(true);
    let vault = client(bao.addr());
    let secret = Plaintext::new(b"bound".to_vec());
    let ct = vault
        .encrypt(
            &root,
            "transit",
            "shop-app",
            &secret,
            Some("shop/app-secrets"),
        )
        .await
        .unwrap();
    let ok = vault
        .decrypt(&root, "transit", "shop-app", &ct, Some("shop/app-secrets"))
        .await
        .unwrap();
    assert_eq!(ok.expose(), b"bound");

    // The same ciphertext copied into another Secret must not decrypt there.
    let err = vault
        .decrypt(&root, "transit", "shop-app", &ct, Some("shop/other"))
        .await
        .unwrap_err();
    match &err {
        VaultError::InvalidRequest {
            path,
            status,
            message,
        } => {
            assert_eq!(path, "transit/decrypt/shop-app");
            assert_eq!(*status, 400);
            assert!(
                message.contains("message authentication failed"),
                "{message}"
            );
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert!(err.hint().unwrap().contains("binding context"));

    let err = vault
        .decrypt(&root, "transit", "shop-app", &ct, None)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidRequest { .. }), "{err:?}");
}

#[tokio::test]
async fn rewrap_moves_ciphertexts_to_the_latest_version_single_and_batch() {
    let (bao, root) = bao_with_key(true);
    let vault = client(bao.addr());
    let a = encrypt(&vault, &root, b"a", Some("ns/a")).await;
    let b = encrypt(&vault, &root, b"b", Some("ns/b")).await;
    vault
        .rotate_key(&root, "transit", "shop-app")
        .await
        .unwrap();

    let a2 = vault
        .rewrap(&root, "transit", "shop-app", &a, Some("ns/a"))
        .await
        .unwrap();
    assert_eq!(ciphertext_version(&a2), Some(2));
    let back = vault
        .decrypt(&root, "transit", "shop-app", &a2, Some("ns/a"))
        .await
        .unwrap();
    assert_eq!(back.expose(), b"a");

    // Each batch item carries its own context; a wrong one fails alone.
    let items = vec![
        BatchItem {
            ciphertext: a.clone(),
            context: Some("ns/a".into()),
        },
        BatchItem {
            ciphertext: b.clone(),
            context: Some("ns/b".into()),
        },
        BatchItem {
            ciphertext: b.clone(),
            context: Some("ns/not-b".into()),
        },
    ];
    let results = vault
        .rewrap_batch(&root, "transit", "shop-app", &items)
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    let b2 = results[1].as_ref().unwrap();
    assert_eq!(ciphertext_version(b2), Some(2));
    assert!(results[0].is_ok());
    let err = results[2].as_ref().unwrap_err();
    assert!(err.contains("message authentication failed"), "{err}");
    let back = vault
        .decrypt(&root, "transit", "shop-app", b2, Some("ns/b"))
        .await
        .unwrap();
    assert_eq!(back.expose(), b"b");
}

#[tokio::test]
async fn key_read_rotate_retire_and_trim() {
    let (bao, root) = bao_with_key(false);
    let vault = client(bao.addr());
    let old = encrypt(&vault, &root, b"v1", None).await;
    let info = vault.read_key(&root, "transit", "shop-app").await.unwrap();
    assert_eq!(
        (
            info.latest_version,
            info.min_decryption_version,
            info.derived
        ),
        (1, 1, false)
    );
    assert_eq!(info.key_type, "aes256-gcm96");

    vault
        .rotate_key(&root, "transit", "shop-app")
        .await
        .unwrap();
    vault
        .rotate_key(&root, "transit", "shop-app")
        .await
        .unwrap();
    let info = vault.read_key(&root, "transit", "shop-app").await.unwrap();
    assert_eq!(info.latest_version, 3);
    assert_eq!(info.keys.len(), 3);

    let retire = KeyConfig {
        min_decryption_version: Some(3),
        min_encryption_version: Some(3),
    };
    vault
        .configure_key(&root, "transit", "shop-app", retire)
        .await
        .unwrap();
    let err = vault
        .decrypt(&root, "transit", "shop-app", &old, None)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidRequest { .. }), "{err:?}");

    vault
        .trim_key(&root, "transit", "shop-app", 3)
        .await
        .unwrap();
    let info = vault.read_key(&root, "transit", "shop-app").await.unwrap();
    assert_eq!(
        (info.min_decryption_version, info.min_available_version),
        (3, 3)
    );
    assert_eq!(info.keys.len(), 1, "{:?}", info.keys);

    // Trimming past min_decryption_version is Vault's to refuse, and we surface it.
    let err = vault
        .trim_key(&root, "transit", "shop-app", 4)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidRequest { .. }), "{err:?}");
}

#[tokio::test]
async fn a_token_is_looked_up_then_revoked_for_good() {
    let (bao, _) = bao_with_key(false);
    bao.write_policy(
        "enc",
        r#"path "transit/encrypt/shop-app" { capabilities = ["update"] }"#,
    );
    let token = VaultToken::new(bao.create_token(&["enc"], "1m", 0));
    let vault = client(bao.addr());

    let info = vault.lookup_self(&token).await.unwrap();
    assert!(
        info.policies.contains(&"enc".to_string()),
        "{:?}",
        info.policies
    );
    assert!(info.ttl > 0 && info.ttl <= 60);
    assert!(!info.accessor.is_empty());

    vault.revoke_self(&token).await.unwrap();
    let err = vault.lookup_self(&token).await.unwrap_err();
    assert!(
        matches!(err, VaultError::PermissionDenied { .. }),
        "{err:?}"
    );
    // Its accessor is gone too: nothing of it remains on the server.
    let gone = bao.api(
        "POST",
        "auth/token/lookup-accessor",
        Some(json!({"accessor": info.accessor})),
    );
    assert!(gone.is_err());
}

#[tokio::test]
async fn permission_denied_names_the_path_and_maps_to_its_exit_code() {
    let (bao, _) = bao_with_key(false);
    bao.write_policy(
        "enc-only",
        r#"path "transit/encrypt/shop-app" { capabilities = ["update"] }"#,
    );
    let secret_token = bao.create_token(&["enc-only"], "1m", 0);
    let token = VaultToken::new(secret_token.clone());
    let vault = client(bao.addr());
    let ct = encrypt(&vault, &token, b"x", None).await;
    let err = vault
        .decrypt(&token, "transit", "shop-app", &ct, None)
        .await
        .unwrap_err();
    match &err {
        VaultError::PermissionDenied { path, message } => {
            assert_eq!(path, "transit/decrypt/shop-app");
            assert!(message.contains("permission denied"), "{message}");
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let err = Error::from(err);
    assert_eq!(err.exit_code(), exit::VAULT_DENIED);
    let line = err.one_line();
    assert!(
        line.contains("transit/decrypt/shop-app") && line.contains("hint:"),
        "{line}"
    );
    assert!(!line.contains(&secret_token), "token leaked into: {line}");
    assert!(!format!("{err:?}").contains(&secret_token));
    assert!(!format!("{token:?}").contains(&secret_token));
}

#[tokio::test]
async fn invalid_and_missing_are_distinct() {
    let (bao, root) = bao_with_key(false);
    let vault = client(bao.addr());
    let err = vault
        .decrypt(
            &root,
            "transit",
            "shop-app",
            "vault:v1:bm90LWEtY2lwaGVydGV4dA==",
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::InvalidRequest { status: 400, .. }),
        "{err:?}"
    );
    let err = vault
        .read_key(&root, "transit", "no-such-key")
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::NotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_sealed_vault_is_unavailable_and_retryable() {
    let (bao, root) = bao_with_key(false);
    bao.write("sys/seal", json!({}));
    let err = client(bao.addr()).lookup_self(&root).await.unwrap_err();
    match &err {
        VaultError::Unavailable { message, .. } => assert!(message.contains("sealed"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(Error::from(err).exit_code(), exit::VAULT_UNAVAILABLE);
}

#[tokio::test]
async fn unreachable_vault_is_transient_with_the_address() {
    let addr = closed_addr();
    let err = client(&addr)
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    match &err {
        VaultError::Transient { detail, .. } => {
            assert!(
                detail.contains("cannot connect") && detail.contains(&addr),
                "{detail}"
            )
        }
        other => panic!("expected Transient, got {other:?}"),
    }
    assert!(err.hint().unwrap().contains("VAULT_ADDR"));
}

#[tokio::test]
async fn a_silent_vault_times_out() {
    let mut cfg = config(&silent_addr());
    cfg.timeout = Duration::from_millis(300);
    let err = Client::new(&cfg)
        .unwrap()
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    match &err {
        VaultError::Transient { detail, .. } => assert!(detail.contains("timed out"), "{detail}"),
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_are_transient_and_never_echo_the_body() {
    let proxy = FaultServer::start(502, "text/html", "<html>bad gateway: SENTINEL</html>");
    let err = client(proxy.addr())
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 502") && text.contains("non-JSON"),
        "{text}"
    );
    assert!(!text.contains("SENTINEL"), "{text}");

    let busy = FaultServer::start(429, "application/json", r#"{"errors":["rate limited"]}"#);
    let err = client(busy.addr())
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("rate limited"),
        "{err}"
    );

    let internal = FaultServer::start(500, "application/json", r#"{"errors":["internal error"]}"#);
    let err = client(internal.addr())
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    assert!(
        err.is_transient() && err.to_string().contains("internal error"),
        "{err}"
    );
}

#[tokio::test]
async fn a_success_that_is_not_json_is_a_bad_response() {
    let server = FaultServer::start(200, "text/plain", "hello SENTINEL");
    let err = client(server.addr())
        .lookup_self(&VaultToken::new("t"))
        .await
        .unwrap_err();
    match &err {
        VaultError::BadResponse { path, detail } => {
            assert_eq!(path, "auth/token/lookup-self");
            assert!(!detail.contains("SENTINEL"), "{detail}");
        }
        other => panic!("expected BadResponse, got {other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn bad_addresses_are_refused_up_front() {
    for addr in ["not a url", "ftp://vault:21", ""] {
        let err = Client::new(&config(addr)).unwrap_err();
        assert!(matches!(err, VaultError::Config(_)), "{addr}: {err:?}");
        assert_eq!(Error::from(err).exit_code(), exit::INPUT);
    }
}

#[tokio::test]
async fn tls_with_the_test_ca_works_and_a_wrong_ca_is_refused() {
    let ca = TestCa::new("secret-zero test CA");
    let server = ca.server_cert(&["127.0.0.1", "localhost"]);
    let bao = OpenBao::start_tls(TlsListener {
        cert_pem: &server.chain_pem,
        key_pem: &server.key_pem,
    });
    let root = VaultToken::new(bao.root_token());
    let dir = tempfile::tempdir().unwrap();

    let good = dir.path().join("ca.pem");
    std::fs::write(&good, ca.pem()).unwrap();
    let mut cfg = config(bao.tls_addr());
    cfg.ca_cert = Some(good);
    let info = Client::new(&cfg).unwrap().lookup_self(&root).await.unwrap();
    assert!(info.policies.contains(&"root".to_string()));

    let other = TestCa::new("some other CA");
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, other.pem()).unwrap();
    cfg.ca_cert = Some(wrong);
    let err = Client::new(&cfg)
        .unwrap()
        .lookup_self(&root)
        .await
        .unwrap_err();
    match &err {
        VaultError::Tls { addr, detail } => {
            assert_eq!(addr, bao.tls_addr());
            assert!(detail.to_lowercase().contains("certificate"), "{detail}");
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(err.hint().unwrap().contains("VAULT_CACERT"));

    // A CA file that is not PEM is an input error before any request.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    cfg.ca_cert = Some(junk);
    assert!(matches!(
        Client::new(&cfg).unwrap_err(),
        VaultError::Config(_)
    ));
    cfg.ca_cert = Some(dir.path().join("missing.pem"));
    let err = Client::new(&cfg).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn the_namespace_header_selects_the_namespace() {
    let bao = OpenBao::start();
    bao.write("sys/namespaces/team", json!({}));
    let root = VaultToken::new(bao.root_token());

    let mut cfg = config(bao.addr());
    cfg.namespace = Some("team".into());
    let team = Client::new(&cfg).unwrap();
    // Mount transit inside the namespace through our own client's header.
    let agent = ureq_agent();
    let resp = agent
        .post(format!("{}/v1/sys/mounts/transit", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .header("X-Vault-Namespace", "team")
        .send_json(json!({"type": "transit"}))
        .unwrap();
    assert_eq!(resp.status(), 204);
    agent
        .post(format!("{}/v1/transit/keys/k", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .header("X-Vault-Namespace", "team")
        .send_json(json!({}))
        .unwrap();

    let ct = team
        .encrypt(&root, "transit", "k", &Plaintext::new(b"ns".to_vec()), None)
        .await
        .unwrap();
    assert_eq!(
        team.decrypt(&root, "transit", "k", &ct, None)
            .await
            .unwrap()
            .expose(),
        b"ns"
    );
    // Without the header the mount does not exist.
    let err = client(bao.addr())
        .decrypt(&root, "transit", "k", &ct, None)
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
}

fn ureq_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}
