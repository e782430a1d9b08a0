//! The test bed for `serve`: a real OpenBao with Transit and both auth methods, the
//! Kubernetes API double, and the `secret-zero` binary run as a process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::openbao::OpenBao;
use secret_zero_testbed::wiring;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-zero");
pub const KEY: &str = "shop-app";

pub struct Bed {
    pub bao: OpenBao,
    pub double: KubeDouble,
    pub dir: tempfile::TempDir,
}

impl Bed {
    /// OpenBao with a derived transit key, an `app` policy (decrypt only), kubernetes
    /// auth pointed at the double and jwt auth trusting its JWKS, both with role
    /// `shop-app` for ServiceAccount shop/app (audience vault). The SA may get Secrets in shop.
    pub fn new() -> Bed {
        let double = KubeDouble::start();
        double.create_service_account("shop", "app");
        double.create_service_account("shop", "intruder");
        double.grant("shop", "app", Rule::new(&["get"], &["secrets"]));

        let bao = OpenBao::start();
        bao.enable_transit("transit");
        bao.create_key("transit", KEY, true);
        bao.create_key("transit", "plain-key", false);
        bao.write_policy(
            "app",
            r#"path "transit/decrypt/shop-app" { capabilities = ["update"] }
path "transit/decrypt/plain-key" { capabilities = ["update"] }"#,
        );
        bao.write_policy(
            "nothing",
            r#"path "sys/nothing" { capabilities = ["read"] }"#,
        );
        wiring::kubernetes_auth(&bao, &double);
        wiring::kubernetes_role(&bao, "shop-app", "shop", "app", &["app"]);
        wiring::kubernetes_role(&bao, "no-decrypt", "shop", "app", &["nothing"]);
        bao.enable_auth("jwt", "jwt");
        bao.write(
            "auth/jwt/config",
            json!({
                "jwks_url": format!("{}/openid/v1/jwks", double.url()),
                "jwks_ca_pem": double.ca_pem(),
                "bound_issuer": double.issuer(),
            }),
        );
        bao.write(
            "auth/jwt/role/shop-app",
            json!({
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_audiences": ["vault"],
                "bound_subject": "system:serviceaccount:shop:app",
                "token_policies": ["app"],
                "token_ttl": "10s",
                "token_num_uses": 3,
            }),
        );
        Bed {
            bao,
            double,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Encrypt `doc` under `key`, bound to `context` when given.
    pub fn encrypt(&self, key: &str, doc: &[u8], context: Option<&str>) -> String {
        self.bao.encrypt("transit", key, doc, context)
    }

    /// A Secret as `seal` writes it: annotated, ciphertext under `ciphertext`.
    pub fn put_sealed(&self, ns: &str, name: &str, ciphertext: &str, binding: &str) {
        self.double.put_secret(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "namespace": ns, "name": name,
                "labels": {"app.kubernetes.io/managed-by": "secret-zero"},
                "annotations": {
                    "secret-zero.dev/transit-mount": "transit",
                    "secret-zero.dev/transit-key": KEY,
                    "secret-zero.dev/binding": binding,
                    "secret-zero.dev/format": "json",
                },
            },
            "data": {"ciphertext": b64(ciphertext.as_bytes())},
        }));
    }

    /// A Secret as the old Python tool wrote it.
    pub fn put_legacy(&self, ns: &str, name: &str, ciphertext: &str) {
        self.double.put_secret(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": ns, "name": name},
            "data": {"secrets.json": b64(ciphertext.as_bytes())},
        }));
    }

    /// A projected-token file for `ns/sa` with the given audience and lifetime.
    pub fn token_file(&self, ns: &str, sa: &str, audience: &str, secs: i64) -> PathBuf {
        let path = self.path(&format!("token-{ns}-{sa}-{audience}-{secs}"));
        std::fs::write(&path, self.double.issue_token(ns, sa, &[audience], secs)).unwrap();
        path
    }

    /// A kubeconfig carrying shop/app's own API token (what in-cluster config gives a pod).
    pub fn app_kubeconfig(&self, sa: &str) -> PathBuf {
        let path = self.path(&format!("kubeconfig-{sa}"));
        let token = self
            .double
            .issue_token("shop", sa, &[&self.double.issuer()], 3600);
        self.double.write_kubeconfig(&path, &token);
        path
    }

    /// `serve` with the usual Vault and Kubernetes flags plus `extra`.
    pub fn serve(&self, socket: &str, extra: &[&str]) -> Agent {
        let token = self.token_file("shop", "app", "vault", 600);
        let kubeconfig = self.app_kubeconfig("app");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--vault-addr".into(),
            self.bao.addr().into(),
            "--role".into(),
            "shop-app".into(),
            "--token-file".into(),
            token.display().to_string(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--socket".into(),
            socket.into(),
            "--retry-timeout".into(),
            "2s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        spawn_agent(&args, self.dir.path())
    }

    pub fn socket(&self) -> String {
        self.path(&format!("agent-{}.sock", fastrand::u32(..)))
            .display()
            .to_string()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub use secret_zero_testbed::process::Agent;

/// Run the `secret-zero` binary with `args` as an agent.
pub fn spawn_agent(args: &[String], dir: &Path) -> Agent {
    Agent::spawn(Path::new(BIN), args, dir)
}

/// Run the binary to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run secret-zero")
}

/// `get` once; (exit code, stdout, stderr).
pub fn get(socket: &str, extra: &[&str]) -> (i32, Vec<u8>, String) {
    let mut args = vec!["get", "--socket", socket];
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}
