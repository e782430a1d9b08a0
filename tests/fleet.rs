//! What a fleet of agents costs Vault: the requests of one pod start, counted from
//! outside the agent by a proxy in front of a real OpenBao.

use std::time::Duration;

use secret_zero_testbed::agent::{self, Agent};
use secret_zero_testbed::bed::{Bed, DERIVED as KEY};
use secret_zero_testbed::proxy::CountingProxy;
use secret_zero_testbed::text::{doc_with, json_of, logged_accessor, sentinel};
use secret_zero_testbed::wait::Poll;
use secret_zero_testbed::wiring;
use serde_json::json;

/// The bed with role `shop-app` granting tokens of `num_uses` uses, a bound Secret,
/// and an agent that reaches OpenBao through a counting proxy. Returns the bed, the
/// proxy, the document, and the agent's log after one delivery.
fn one_pod_start(num_uses: u32) -> (Bed, CountingProxy, Vec<u8>, String) {
    let (bed, doc) = bed_with_secret(num_uses);
    let proxy = CountingProxy::start(upstream(&bed));
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--vault-addr", &proxy.url()]);
    let delivered = agent.get_ok(&[]).bytes;
    assert_eq!(json_of(&delivered), json_of(&doc));
    let log = agent.log();
    (bed, proxy, doc, log)
}

/// The bed with role `shop-app` granting tokens of `num_uses` uses and the bound
/// Secret shop/app-secrets in place, nothing started. Returns the bed and the document.
fn bed_with_secret(num_uses: u32) -> (Bed, Vec<u8>) {
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
    (bed, doc)
}

/// OpenBao's `host:port`, for a proxy in front of it.
fn upstream(bed: &Bed) -> &str {
    bed.bao.addr().trim_start_matches("http://")
}

/// The document `agent` delivers, asking every `every` until `within` has passed.
fn delivered(agent: &Agent, within: Duration, every: Duration) -> Vec<u8> {
    Poll::within(within).every(every).eventually(
        || {
            let run = agent.get(&[]);
            run.success().then_some(run.bytes)
        },
        || format!("an agent did not deliver:\n{}", agent.log()),
    )
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

/// Agents started at once in the stampede test.
const FLEET: usize = 100;
/// OpenBao's rate limit for it, requests per second: far below what 100 agents ask for
/// at once, so most first attempts get 429.
const RATE: f64 = 25.0;

/// A node pool replaced: 100 agents start at once against an OpenBao whose rate-limit
/// quota lets 25 requests a second through (and says `Retry-After`). Every agent
/// delivers within its `--retry-timeout`, and the retries do not storm.
///
/// The bound: an operation retried with full jitter waits on average half its backoff
/// step, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6 s, then 2.5 s a retry (the 5 s cap), plus the
/// server's Retry-After (0 or 1 s here). So in a run of D seconds one operation makes at
/// most 7 + D / 2.5 attempts on average, and the fleet (2 operations an agent: login and
/// decrypt; the token is one-use, so no revoke) at most 2 · 100 · (7 + D / 2.5). The test
/// allows 1.5 times that for the spread of the jitter. A retry every 100 ms, the old
/// floor of the backoff, would instead make 2 · 100 · 10 · D.
#[test]
fn a_hundred_agents_against_a_rate_limited_vault_all_deliver_without_a_retry_storm() {
    let bed = Bed::new();
    wiring::jwt_auth(&bed.bao, &bed.double, wiring::JwtKeys::PublicKey);
    bed.bao.write(
        "auth/jwt/role/fleet",
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"],
            "bound_subject": "system:serviceaccount:shop:app",
            "token_policies": ["app"], "token_ttl": "60s", "token_num_uses": 1,
        }),
    );
    let doc = doc_with(&sentinel());
    let ct = bed.encrypt(secret_zero_testbed::bed::PLAIN, &doc, None);
    let ciphertext = bed.file("ciphertext", &ct);
    let token = bed.token_file("shop", "app", "vault", 600);
    let proxy = CountingProxy::start(upstream(&bed));
    // The quota last: from now on the test itself no longer calls OpenBao.
    bed.bao.write(
        "sys/quotas/config",
        json!({"enable_rate_limit_response_headers": true}),
    );
    bed.bao.write(
        "sys/quotas/rate-limit/stampede",
        json!({"rate": RATE, "interval": "1s"}),
    );

    let start = std::time::Instant::now();
    let mut agents: Vec<Agent> = (0..FLEET)
        .map(|_| {
            let socket = bed.socket();
            let mut cmd = agent::serve(&socket);
            cmd.arg("--ciphertext-file")
                .arg(&ciphertext)
                .args(["--transit-key", secret_zero_testbed::bed::PLAIN])
                .args(["--auth-method", "jwt", "--role", "fleet"])
                .arg("--token-file")
                .arg(&token)
                .args(["--vault-addr", &proxy.url(), "--retry-timeout", "90s"])
                .args(["--log-level", "warn"]);
            Agent::start(&cmd, socket)
        })
        .collect();
    for agent in &mut agents {
        let delivered = delivered(agent, Duration::from_secs(120), Duration::from_millis(200));
        assert_eq!(json_of(&delivered), json_of(&doc));
    }
    let d = start.elapsed().as_secs_f64();
    let (requests, refused) = (proxy.requests(), proxy.too_many());
    let bound = 1.5 * 2.0 * FLEET as f64 * (7.0 + d / 2.5);
    eprintln!(
        "{FLEET} agents delivered in {d:.1} s: {requests} Vault requests, {refused} answered 429; bound {bound:.0}"
    );
    assert!(
        refused >= FLEET,
        "the quota should have refused most first attempts: only {refused} 429s"
    );
    assert!(
        requests as f64 <= bound,
        "retry storm: {requests} requests in {d:.1} s, more than {bound:.0}"
    );
    // Every agent delivered, and no more than the quota's rate can have been served.
    assert!(
        (requests - refused) as f64 <= RATE * (d + 1.0) + 1.0,
        "{} requests got through in {d:.1} s at {RATE}/s",
        requests - refused
    );
}

/// Reading the Secret and logging in overlap; when the Secret is missing, the token
/// minted meanwhile is revoked at once and the error is the Secret's.
#[test]
fn a_token_minted_for_a_missing_secret_is_revoked_and_the_error_is_the_secrets() {
    let bed = Bed::new();
    let proxy = CountingProxy::start(upstream(&bed));
    let mut agent = bed.serve(
        &bed.socket(),
        &[
            "--secret",
            "shop/no-such-secret",
            "--vault-addr",
            &proxy.url(),
        ],
    );
    let (code, log) = agent.wait_exit();
    assert_eq!(code, 7, "the Secret's error decides the exit code:\n{log}");
    let last = log.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("shop/no-such-secret") && last.contains("not found"),
        "{last}"
    );
    assert!(log.contains("Vault token revoked"), "{log}");
    assert_eq!(proxy.requests(), 2, "login and revoke:\n{log}");
    assert!(
        !token_alive(&bed, &log),
        "the token outlived the failed start"
    );
}

/// With a token that still has uses after the decrypt, the agent reports ready at once
/// and revokes beside the first request, which is answered only after the revoke.
#[test]
fn ready_comes_before_the_revoke_and_the_first_delivery_after_it() {
    let (bed, doc) = bed_with_secret(3);
    // The revoke takes 3 s to reach OpenBao.
    let proxy = CountingProxy::holding(
        upstream(&bed),
        Some(("revoke-self", Duration::from_secs(3))),
    );
    let mut agent = bed.serve(
        &bed.socket(),
        &["--secret", "shop/app-secrets", "--vault-addr", &proxy.url()],
    );
    agent.wait_ready();
    assert!(
        !agent.log().contains("Vault token revoked"),
        "ready waited for the revoke:\n{}",
        agent.log()
    );
    let delivered = agent.get_ok(&[]).bytes;
    assert_eq!(json_of(&delivered), json_of(&doc));
    let log = agent.log();
    let revoked = log.find("Vault token revoked").expect("the revoke is done");
    let served = log
        .find("secret delivered")
        .expect("the delivery is logged");
    assert!(revoked < served, "delivered before the revoke:\n{log}");
    assert!(!token_alive(&bed, &log));
}

/// OpenBao's rate-limit quota without `enable_rate_limit_response_headers` answers 429
/// with no `Retry-After`: the agents retry on their own backoff and all deliver.
#[test]
fn vault_429_without_retry_after_is_retried_on_the_backoff() {
    let (bed, doc) = bed_with_secret(1);
    let proxy = CountingProxy::start(upstream(&bed));
    bed.bao.write(
        "sys/quotas/rate-limit/no-headers",
        json!({"rate": 4.0, "interval": "1s"}),
    );
    let agents: Vec<Agent> = (0..8)
        .map(|_| {
            bed.serve(
                &bed.socket(),
                &[
                    "--secret",
                    "shop/app-secrets",
                    "--vault-addr",
                    &proxy.url(),
                    "--retry-timeout",
                    "60s",
                ],
            )
        })
        .collect();
    for agent in &agents {
        let delivered = delivered(agent, Duration::from_secs(60), Duration::from_millis(100));
        assert_eq!(json_of(&delivered), json_of(&doc));
    }
    let logs: String = agents.iter().map(Agent::log).collect();
    assert!(proxy.too_many() > 0, "the quota refused nothing:\n{logs}");
    assert!(logs.contains("transient failure, retrying"), "{logs}");
    assert!(
        !logs.contains("retry_after_s=0") && !logs.contains("retry_after_s=1"),
        "a Retry-After was seen where OpenBao sends none:\n{logs}"
    );
}

/// A `Retry-After` that is not a number of seconds (here `soon`) is ignored: the agent
/// retries on its backoff and delivers once Vault lets it through.
#[test]
fn a_malformed_retry_after_falls_back_to_the_backoff() {
    let (bed, doc) = bed_with_secret(1);
    let proxy = CountingProxy::refusing(upstream(&bed), 3, Some("soon"));
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--vault-addr", &proxy.url()]);
    let delivered = agent.get_ok(&[]).bytes;
    assert_eq!(json_of(&delivered), json_of(&doc));
    let log = agent.log();
    assert_eq!(proxy.too_many(), 3, "{log}");
    assert_eq!(
        proxy.requests(),
        5,
        "3 refused, then login and decrypt:\n{log}"
    );
    assert_eq!(
        log.matches("transient failure, retrying").count(),
        3,
        "{log}"
    );
    assert!(
        !log.contains("retry_after_s=") || log.contains("retry_after_s=None"),
        "{log}"
    );
}

/// A `Retry-After` longer than the time left before `--retry-timeout` is not slept
/// through: the agent gives up at once with the retry exit code and one line, and has
/// made no other request.
#[test]
fn a_retry_after_beyond_the_retry_timeout_ends_the_retries_at_once() {
    let (bed, _) = bed_with_secret(1);
    let proxy = CountingProxy::refusing(upstream(&bed), 100, Some("3600"));
    let started = std::time::Instant::now();
    let mut agent = bed.serve(
        &bed.socket(),
        &[
            "--secret",
            "shop/app-secrets",
            "--vault-addr",
            &proxy.url(),
            "--retry-timeout",
            "60s",
        ],
    );
    let (code, log) = agent.wait_exit();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the agent waited for a Retry-After past its deadline:\n{log}"
    );
    assert_eq!(code, 6, "Vault unavailable:\n{log}");
    assert_eq!(proxy.requests(), 1, "one refused login, no retry:\n{log}");
    let last = log.trim().lines().last().unwrap_or_default();
    assert!(last.contains("429"), "{last}");
}
