//! The bed the `serve`, `seal` and `rotate` suites start from: a real OpenBao with
//! Transit and kubernetes auth pointed at the Kubernetes API double, the application's
//! ServiceAccount, and `secret-zero serve` run as that application's agent.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::agent::{self, Agent};
use crate::kube_double::{KubeDouble, Rule};
use crate::openbao::{ApiError, OpenBao};
use crate::text::{b64, unb64};
use crate::wiring;

/// A derived key: a ciphertext is bound to the Secret's identity by default.
pub const DERIVED: &str = "shop-app";
/// A plain key, as the old tool used.
pub const PLAIN: &str = "plain-key";
/// The application's policy: decrypt with both keys, nothing else.
pub const APP_POLICY: &str = r#"path "transit/decrypt/shop-app" { capabilities = ["update"] }
path "transit/decrypt/plain-key" { capabilities = ["update"] }"#;

pub struct Bed {
    pub bao: OpenBao,
    pub double: KubeDouble,
    pub dir: tempfile::TempDir,
}

impl Bed {
    /// OpenBao with transit keys [`DERIVED`] and [`PLAIN`], policy `app`
    /// ([`APP_POLICY`]), kubernetes auth pointed at the double with role `shop-app`
    /// for ServiceAccount shop/app (audience vault), which may get Secrets in shop.
    pub fn new() -> Bed {
        let bed = Bed::bare();
        let (bao, double) = (&bed.bao, &bed.double);
        double.create_service_account("shop", "app");
        double.grant("shop", "app", Rule::new(&["get"], &["secrets"]));
        bao.enable_transit("transit");
        bao.create_key("transit", DERIVED, true);
        bao.create_key("transit", PLAIN, false);
        bao.write_policy("app", APP_POLICY);
        wiring::kubernetes_auth(bao, double);
        wiring::kubernetes_role(bao, "shop-app", "shop", "app", &["app"]);
        bed
    }

    /// A bare OpenBao dev server and an empty API double, for a test that configures
    /// them itself (as `manifests/vault/setup.sh` does).
    pub fn bare() -> Bed {
        Bed {
            bao: OpenBao::start(),
            double: KubeDouble::start(),
            dir: tempfile::tempdir().expect("the bed's directory"),
        }
    }

    /// `name` in the bed's private directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file in the bed's directory; returns its path as text, for command lines.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path.display().to_string()
    }

    /// Encrypt `doc` as root under `key`, bound to `context` when given.
    pub fn encrypt(&self, key: &str, doc: &[u8], context: Option<&str>) -> String {
        self.bao.encrypt("transit", key, doc, context)
    }

    /// Decrypt as root, as an operator would by hand; or Vault's refusal.
    pub fn try_decrypt(
        &self,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut body = json!({ "ciphertext": ciphertext });
        if let Some(context) = context {
            body["context"] = json!(b64(context));
        }
        let answer = self
            .bao
            .api("POST", &format!("transit/decrypt/{key}"), Some(body))?;
        Ok(unb64(
            answer["data"]["plaintext"].as_str().unwrap_or_default(),
        ))
    }

    /// [`try_decrypt`](Self::try_decrypt) that must succeed.
    pub fn decrypt(&self, key: &str, ciphertext: &str, context: Option<&str>) -> Vec<u8> {
        self.try_decrypt(key, ciphertext, context)
            .unwrap_or_else(|e| panic!("decrypt with {key}: {} {}", e.status, e.body))
    }

    /// A Secret under [`DERIVED`] as `seal` writes it, stored in the double.
    pub fn put_sealed(&self, ns: &str, name: &str, ciphertext: &str, binding: &str) -> Value {
        self.double
            .put_secret(sealed_secret(ns, name, DERIVED, binding, ciphertext))
    }

    /// Seal `doc` under [`DERIVED`] bound to `ns/name`, as `seal` does, and store it.
    pub fn put_bound(&self, ns: &str, name: &str, doc: &[u8]) -> Value {
        let ciphertext = self.encrypt(DERIVED, doc, Some(&format!("{ns}/{name}")));
        self.put_sealed(ns, name, &ciphertext, "identity")
    }

    /// A Secret as the old Python tool wrote it: `secrets.json`, no labels, no binding.
    pub fn put_legacy(&self, ns: &str, name: &str, ciphertext: &str) -> Value {
        self.double.put_secret(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": ns, "name": name},
            "data": {"secrets.json": b64(ciphertext)},
        }))
    }

    /// The stored Secret, which must exist.
    pub fn stored(&self, ns: &str, name: &str) -> Value {
        self.double
            .secret(ns, name)
            .unwrap_or_else(|| panic!("Secret {ns}/{name} is not in the cluster"))
    }

    /// A projected-token file for `ns/sa` with this audience and lifetime, at
    /// `token-NS-SA-AUDIENCE-SECS` in the bed's directory.
    pub fn token_file(&self, ns: &str, sa: &str, audience: &str, secs: i64) -> PathBuf {
        // Written aside and renamed into place, as kubelet's atomic writer does: an
        // agent started a moment ago may be reading the old one.
        let path = self.path(&format!("token-{ns}-{sa}-{audience}-{secs}"));
        let aside = self.path(&format!(".token-{}", fastrand::u64(..)));
        std::fs::write(&aside, self.double.issue_token(ns, sa, &[audience], secs)).unwrap();
        std::fs::rename(&aside, &path).unwrap();
        path
    }

    /// A kubeconfig carrying shop/`sa`'s own API token.
    pub fn kubeconfig(&self, sa: &str) -> PathBuf {
        self.double.sa_kubeconfig(self.dir.path(), "shop", sa)
    }

    /// A fresh socket path in the bed's directory.
    pub fn socket(&self) -> String {
        self.path(&format!("agent-{}.sock", fastrand::u32(..)))
            .display()
            .to_string()
    }

    /// `serve` as shop/app (role shop-app, its projected token and API kubeconfig) on
    /// `socket`, retrying for 2 s, plus `extra` (the source, and what a test changes:
    /// a later flag wins).
    pub fn serve(&self, socket: &str, extra: &[&str]) -> Agent {
        let token = self.token_file("shop", "app", "vault", 600);
        let kubeconfig = self.kubeconfig("app");
        let mut cmd = agent::serve(socket);
        cmd.args(["--vault-addr", self.bao.addr(), "--role", "shop-app"])
            .arg("--token-file")
            .arg(token)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--retry-timeout", "2s"])
            .args(extra);
        Agent::start(&cmd, socket)
    }

    /// [`serve`](Self::serve) on a fresh socket, waiting until it is ready.
    pub fn serve_ready(&self, extra: &[&str]) -> Agent {
        let mut agent = self.serve(&self.socket(), extra);
        agent.wait_ready();
        agent
    }

    /// `serve --secret SECRET EXTRA...`, `get` once, stop it: the delivered document.
    pub fn serve_and_get(&self, secret: &str, extra: &[&str]) -> Vec<u8> {
        let mut args = vec!["--secret", secret];
        args.extend_from_slice(extra);
        self.serve_ready(&args).get_ok(&[]).bytes
    }
}

impl Default for Bed {
    fn default() -> Bed {
        Bed::new()
    }
}

/// A Secret as `seal` writes it: labelled, annotated, the ciphertext under `ciphertext`.
pub fn sealed_secret(ns: &str, name: &str, key: &str, binding: &str, ciphertext: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "namespace": ns, "name": name,
            "labels": {"app.kubernetes.io/managed-by": "secret-zero"},
            "annotations": {
                "secret-zero.dev/transit-mount": "transit",
                "secret-zero.dev/transit-key": key,
                "secret-zero.dev/binding": binding,
                "secret-zero.dev/format": "json",
            },
        },
        "data": {"ciphertext": b64(ciphertext)},
    })
}

/// The `vault:vN:` text under `data_key` of a Secret as JSON (base64 in `data`).
pub fn ciphertext_of(secret: &Value, data_key: &str) -> String {
    let encoded = secret["data"][data_key]
        .as_str()
        .unwrap_or_else(|| panic!("no data key {data_key} in {secret}"));
    String::from_utf8(unb64(encoded)).expect("a ciphertext is text")
}
