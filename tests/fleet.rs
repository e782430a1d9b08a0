//! What a fleet of agents costs Vault: the requests of one pod start, counted from
//! outside the agent by a proxy in front of a real OpenBao.

use secret_zero_testbed::bed::{Bed, DERIVED as KEY};
use secret_zero_testbed::proxy::CountingProxy;
use secret_zero_testbed::text::{doc_with, json_of, logged_accessor, sentinel};
use secret_zero_testbed::wiring;
use serde_json::json;

/// The bed with role `shop-app` granting tokens of `num_uses` uses, a bound Secret,
/// and an agent that reaches OpenBao through a counting proxy. Returns the bed, the
/// proxy, the document, and the agent's log after one delivery.
fn one_pod_start(num_uses: u32) -> (Bed, CountingProxy, Vec<u8>, String) {
    let bed = Bed::new();
    wiring::kubernetes_role_with(
        &bed.bao,
        "shop-app",
        "shop",
        "app",
        &["app"],
        "10s",
        num_uses,
    );
    let doc = doc_with(&sentinel());
    let ct = bed.encrypt(KEY, &doc, Some("shop/app-secrets"));
    bed.put_sealed("shop", "app-secrets", &ct, "identity");
    let proxy = CountingProxy::start(bed.bao.addr().trim_start_matches("http://"));
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--vault-addr", &proxy.url()]);
    let delivered = agent.get_ok(&[]).bytes;
    assert_eq!(json_of(&delivered), json_of(&doc));
    let log = agent.log();
    (bed, proxy, doc, log)
}

fn token_alive(bed: &Bed, log: &str) -> bool {
    let accessor = logged_accessor(log);
    bed.bao
        .api(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({"accessor": accessor})),
        )
        .is_ok()
}

#[test]
fn a_one_use_token_costs_vault_two_requests_and_dies_on_its_use() {
    let (bed, proxy, _, log) = one_pod_start(1);
    assert_eq!(proxy.requests(), 2, "login and decrypt only:\n{log}");
    assert!(log.contains("num_uses=1"), "{log}");
    assert!(log.contains("Vault token used up"), "{log}");
    assert!(!log.contains("Vault token revoked"), "{log}");
    assert!(
        !token_alive(&bed, &log),
        "the one-use token outlived its use"
    );
}

#[test]
fn a_token_with_uses_to_spare_is_still_revoked() {
    let (bed, proxy, _, log) = one_pod_start(3);
    assert_eq!(proxy.requests(), 3, "login, decrypt and revoke:\n{log}");
    assert!(log.contains("Vault token revoked"), "{log}");
    assert!(!token_alive(&bed, &log), "the token was not revoked");
}

#[test]
fn an_unlimited_token_is_still_revoked() {
    let (bed, proxy, _, log) = one_pod_start(0);
    assert_eq!(proxy.requests(), 3, "login, decrypt and revoke:\n{log}");
    assert!(log.contains("Vault token revoked"), "{log}");
    assert!(!token_alive(&bed, &log), "the token was not revoked");
}
