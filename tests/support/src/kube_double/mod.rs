//! A Kubernetes API double: a small HTTPS API server that speaks the real wire format
//! for the endpoints secret-zero uses, so that our code (the `kube` crate) and clients
//! nobody here wrote (`kubectl`, OpenBao's `kubernetes` and `jwt` auth methods) work
//! against it unchanged.
//!
//! Served:
//! - discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/authentication.k8s.io/v1`;
//! - core/v1 Secrets: get, list (per namespace and `/api/v1/secrets`, label and field
//!   selectors, `limit`/`continue`), create, update (409 on a stale
//!   `resourceVersion`), merge/strategic-merge patch, delete; Tables for kubectl;
//! - core/v1 ConfigMaps: get, create, delete (the `--plaintext-configmap` source);
//! - core/v1 Pods: get, list (per namespace and `/api/v1/pods`, selectors,
//!   `limit`/`continue`), Tables for kubectl; stored only through the back door
//!   ([`KubeDouble::put_pod`]), since nothing here schedules them;
//! - core/v1 ServiceAccounts (create/get/list/delete) and TokenRequest
//!   (`serviceaccounts/NAME/token`); Namespaces (get/list; they appear on first use);
//! - TokenReview, OIDC discovery and JWKS (public, as with `--anonymous-auth` limited
//!   to those paths);
//! - bearer authentication (the admin token or ServiceAccount tokens it issued) and
//!   per-ServiceAccount RBAC ([`Rule`]), answering real `Status` objects.
//!
//! Request bodies may be JSON or Kubernetes protobuf (what kubectl sends for typed
//! commands); answers are always JSON. `fieldValidation=Strict` (kubectl's default)
//! rejects unknown Secret fields. Not served: watch, deletecollection, JSON patch,
//! server-side apply, OpenAPI schemas (a stub OpenAPI v3 tells kubectl to validate on
//! the server), aggregated discovery (clients fall back to the legacy documents).
//!
//! ServiceAccount tokens are ES256 JWTs with the real claims. As on a real API server,
//! `exp` and `nbf` get 60 s of leeway: a token counts as expired only once its `exp`
//! is more than a minute in the past.

mod admin;
mod authn;
mod backdoor;
mod certs;
mod client;
mod clock;
mod configmaps;
mod decode;
mod discovery;
mod http;
mod ids;
mod kubeconfig;
mod list_faults;
mod listing;
mod merge_patch;
mod namespaces;
mod openapi;
mod pods;
mod protobuf;
mod rbac;
mod routes;
mod rule;
mod secret_object;
mod secrets;
mod selectors;
mod server;
mod serviceaccounts;
mod signing;
mod state;
mod status;
mod table;
mod tokenreview;
mod tokens;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

pub use http::Cut;
pub use list_faults::EXPIRED_MESSAGE;
pub use rule::Rule;

use state::Double;

/// A running API double. Dropping it stops the server.
pub struct KubeDouble {
    double: Arc<Double>,
    ca_pem: String,
    _server: server::Running,
}

impl KubeDouble {
    /// Starts on `127.0.0.1:<free port>`, on its own thread and runtime.
    pub fn start() -> KubeDouble {
        KubeDouble::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("kube double: bind 127.0.0.1:0")
    }

    /// Starts on `addr` (port 0 picks a free one). The URL always names 127.0.0.1 when
    /// bound to an unspecified address, since that is what the certificate covers.
    pub fn start_on(addr: SocketAddr) -> io::Result<KubeDouble> {
        let listener = TcpListener::bind(addr)?;
        let mut local = listener.local_addr()?;
        if local.ip().is_unspecified() {
            local.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let tls = certs::generate();
        let double = Arc::new(Double::new(format!("https://{local}")));
        let server = server::spawn(listener, tls.config, double.clone());
        Ok(KubeDouble {
            double,
            ca_pem: tls.ca_pem,
            _server: server,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.double.issuer.clone()
    }

    /// PEM of the CA that signed the serving certificate (SANs 127.0.0.1, localhost,
    /// kubernetes.default.svc, kubernetes.default.svc.cluster.local).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The service-account token issuer, equal to [`url`](Self::url) so OIDC discovery
    /// at the issuer works. It is also the API server's own audience.
    pub fn issuer(&self) -> String {
        self.double.issuer.clone()
    }

    /// A static token allowed everything (user `kubernetes-admin`, `system:masters`).
    pub fn admin_token(&self) -> String {
        self.double.admin_token.clone()
    }

    /// Records a namespace; namespaces also appear on first use.
    pub fn create_namespace(&self, ns: &str) {
        self.double.cluster().ensure_namespace(ns);
    }

    /// Creates the ServiceAccount (or finds the existing one) and returns its uid.
    pub fn create_service_account(&self, ns: &str, name: &str) -> String {
        self.double.cluster().create_service_account(ns, name)
    }

    /// Deletes the ServiceAccount: its tokens stop authenticating, as on a real cluster.
    pub fn delete_service_account(&self, ns: &str, name: &str) {
        self.double
            .cluster()
            .service_accounts
            .remove(&(ns.to_string(), name.to_string()));
    }

    /// Grants `rule` to the ServiceAccount `ns/sa` (a RoleBinding in `ns`, or a
    /// ClusterRoleBinding when the rule is `cluster_wide`).
    pub fn grant(&self, ns: &str, sa: &str, rule: Rule) {
        admin::grant(&self.double, ns, sa, rule);
    }

    /// A token as TokenRequest issues it, but without the 600 s floor: any expiry,
    /// even negative. Mind the 60 s leeway: pass less than -60 for a token the server
    /// already treats as expired. Empty `audiences` means the API server's audience.
    /// For an unknown ServiceAccount the token carries a random uid (it then fails
    /// review with `serviceaccounts "NAME" not found`).
    pub fn issue_token(
        &self,
        ns: &str,
        sa: &str,
        audiences: &[&str],
        expiration_secs: i64,
    ) -> String {
        let audiences: Vec<String> = audiences.iter().map(|a| a.to_string()).collect();
        admin::issue_token(&self.double, ns, sa, &audiences, expiration_secs)
    }

    /// A kubeconfig for the ServiceAccount `ns/sa` with its own API token (the API
    /// server's audience, valid an hour: what in-cluster config gives a pod), written
    /// to `dir/kubeconfig-NS-SA`; returns its path.
    pub fn sa_kubeconfig(&self, dir: &Path, ns: &str, sa: &str) -> PathBuf {
        let path = dir.join(format!("kubeconfig-{ns}-{sa}"));
        let token = self.issue_token(ns, sa, &[&self.issuer()], 3600);
        self.write_kubeconfig(&path, &token);
        path
    }

    /// The admin's kubeconfig (see [`admin_token`](Self::admin_token)), written to
    /// `dir/admin-kubeconfig`; returns its path.
    pub fn admin_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("admin-kubeconfig");
        self.write_kubeconfig(&path, &self.admin_token());
        path
    }

    /// Writes a kubeconfig (cluster with inline CA, token user, context, current-context).
    pub fn write_kubeconfig(&self, path: &Path, token: &str) {
        let text = kubeconfig::render(&self.url(), &self.ca_pem, token);
        // Aside, then renamed into place: a client started a moment ago may be
        // reading the previous one.
        let aside = path.with_extension(format!("tmp-{}", fastrand::u64(..)));
        std::fs::write(&aside, text)
            .and_then(|()| std::fs::rename(&aside, path))
            .unwrap_or_else(|e| panic!("kube double: write kubeconfig {}: {e}", path.display()));
    }

    /// Writes the CA PEM to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("kube double: write CA {}: {e}", path.display()));
    }

    /// What `/openid/v1/jwks` serves.
    pub fn jwks(&self) -> Value {
        self.double.signer.jwks()
    }

    /// The token signing key as SPKI PEM, for OpenBao jwt auth `jwt_validation_pubkeys`.
    pub fn signing_public_key_pem(&self) -> String {
        self.double.signer.public_key_pem()
    }

    /// Test back door: creates or replaces a Secret as the API would store it
    /// (`stringData` folded into `data`, `type` defaulted, uid, creationTimestamp and
    /// resourceVersion maintained; any `resourceVersion` given is ignored). The
    /// namespace defaults to `default`. Panics on a Secret the API would reject,
    /// unknown fields included (as `fieldValidation=Strict` does), to catch typos.
    pub fn put_secret(&self, secret: Value) -> Value {
        let ns = namespace_or_default(&secret);
        let mut new = secret_object::from_client(secret, &ns, None, secret_object::Unknown::Reject)
            .unwrap_or_else(|e| {
                panic!(
                    "kube double: put_secret: the API would reject this Secret: {}",
                    String::from_utf8_lossy(&e.body)
                )
            });
        if let Some(meta) = new["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.double
            .cluster()
            .store(|c| &mut c.secrets, &ns, &name, new)
    }

    /// Test back door: creates or replaces a ConfigMap as the API would store it
    /// (`data` strings, `binaryData` base64; uid, creationTimestamp and resourceVersion
    /// maintained). The namespace defaults to `default`. Panics on a ConfigMap the API
    /// would reject.
    pub fn put_configmap(&self, configmap: Value) -> Value {
        let ns = namespace_or_default(&configmap);
        let new = configmaps::from_client(configmap, &ns).unwrap_or_else(|e| {
            panic!(
                "kube double: put_configmap: the API would reject this ConfigMap: {}",
                String::from_utf8_lossy(&e.body)
            )
        });
        let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.double
            .cluster()
            .store(|c| &mut c.configmaps, &ns, &name, new)
    }

    /// Test back door: creates or replaces a Pod as the API would store it (the
    /// defaults it fills in, `status` as given — a kubelet's report — or `Pending`;
    /// uid, creationTimestamp and resourceVersion maintained). The namespace defaults
    /// to `default`. Panics on a Pod the API would reject.
    pub fn put_pod(&self, pod: Value) -> Value {
        let ns = namespace_or_default(&pod);
        let new = pods::from_client(pod, &ns).unwrap_or_else(|e| {
            panic!(
                "kube double: put_pod: the API would reject this Pod: {}",
                String::from_utf8_lossy(&e.body)
            )
        });
        let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.double
            .cluster()
            .store(|c| &mut c.pods, &ns, &name, new)
    }

    /// Test back door: the stored ConfigMap, as `GET` would return it.
    pub fn configmap(&self, ns: &str, name: &str) -> Option<Value> {
        self.double
            .cluster()
            .configmaps
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Test back door: the stored Secret, as `GET` would return it.
    pub fn secret(&self, ns: &str, name: &str) -> Option<Value> {
        self.double
            .cluster()
            .secrets
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// A plain HTTPS request to the double (TLS verified against its CA), for tests
    /// that check the wire directly: `call("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
    /// Some(&token), Some(&review))`. Answers `(status, body)`; a non-JSON body comes back
    /// as a JSON string.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        client::call(&self.url(), &self.ca_pem, method, path, token, body)
    }

    /// Every continue token issued so far expires, as after an etcd compaction: a list
    /// continued with one is answered `410 Gone`, reason `Expired`, with the API
    /// server's message (and, as it does, a fresh token in the Status's metadata).
    pub fn expire_continue_tokens(&self) {
        list_faults::compact(&mut self.double.cluster());
    }

    /// Expire every continue token issued until then (see
    /// [`expire_continue_tokens`](Self::expire_continue_tokens)) once `lists` more list
    /// requests (of any kind) have been answered with a page.
    pub fn expire_continue_tokens_after(&self, lists: u64) {
        let mut cluster = self.double.cluster();
        let at = cluster.list_faults.answered + lists;
        cluster.list_faults.compact_at = Some(at);
    }

    /// Answer the next `lists` list requests (of any kind) `429 Too Many Requests`, as
    /// API Priority and Fairness does, with `Retry-After: SECS` and the Status's
    /// `details.retryAfterSeconds`.
    pub fn throttle_lists(&self, lists: u64, retry_after_secs: u32) {
        self.throttle_lists_after(0, lists, retry_after_secs);
    }

    /// [`throttle_lists`](Self::throttle_lists), but only once `answered` more list
    /// requests have been answered with a page: 429 in the middle of a paged list.
    pub fn throttle_lists_after(&self, answered: u64, lists: u64, retry_after_secs: u32) {
        let mut cluster = self.double.cluster();
        let from = cluster.list_faults.answered + answered;
        cluster.list_faults.throttle_from = from;
        cluster.list_faults.throttled = lists;
        cluster.list_faults.retry_after_secs = retry_after_secs;
    }

    /// Cut the answers to the next `lists` list requests of Secrets (any namespace)
    /// once `answered` more lists have been answered with a page: the connection closes
    /// `how` the knob says, in the middle of a paged list. A cut page does not count as
    /// answered.
    pub fn cut_lists_after(&self, answered: u64, lists: u64, how: Cut) {
        let mut cluster = self.double.cluster();
        let from = cluster.list_faults.answered + answered;
        let faults = &mut cluster.list_faults;
        faults.cut_lists_from = from;
        faults.cut_lists = lists;
        faults.cut_how = Some(how);
    }

    /// Cut the answers to the next `gets` gets of one Secret (see
    /// [`cut_lists_after`](Self::cut_lists_after)).
    pub fn cut_gets(&self, gets: u64, how: Cut) {
        let mut cluster = self.double.cluster();
        cluster.list_faults.cut_gets = gets;
        cluster.list_faults.cut_how = Some(how);
    }

    /// Answers the two knobs above cut so far.
    pub fn cut_answers(&self) -> u64 {
        self.double.cluster().list_faults.cut_done
    }

    /// List requests the expiry and throttling knobs answered with 410 or 429.
    pub fn refused_lists(&self) -> u64 {
        self.double.cluster().list_faults.refused
    }

    /// API requests served so far (every request to the API server, discovery and
    /// failed ones included; the `/kube-double/` back door excluded).
    pub fn request_count(&self) -> u64 {
        self.double.cluster().log.len() as u64
    }

    /// `"VERB PATH"` of each API request so far, e.g.
    /// `"GET /api/v1/namespaces/shop/secrets/app-secrets"` (no query string).
    pub fn requests(&self) -> Vec<String> {
        self.double.cluster().log.clone()
    }
}

/// `metadata.namespace` of a test's object, `default` when absent or empty.
fn namespace_or_default(object: &Value) -> String {
    let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
    if ns.is_empty() { "default" } else { ns }.to_string()
}
