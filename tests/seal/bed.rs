//! The test bed for `seal`: the test bed's [`Bed`](base::Bed) (OpenBao with both keys,
//! kubernetes auth, the API double, `serve` as shop/app) plus the sealer's Vault
//! policies, the pipeline's ServiceAccount shop/sealer and its role, and `secret-zero
//! seal` and kubectl run as processes.

use std::ops::Deref;
use std::path::PathBuf;

use secret_zero_testbed::bed as base;
use secret_zero_testbed::cmd::{Cmd, Run};
use secret_zero_testbed::kube_double::Rule;
use secret_zero_testbed::kubectl::Kubectl;
use secret_zero_testbed::wiring;
use serde_json::Value;

pub use secret_zero_testbed::bed::{DERIVED, PLAIN, ciphertext_of};
pub use secret_zero_testbed::text::{b64, json_of};

/// The README's least-privilege sealer policy, for both keys.
pub const SEALER_POLICY: &str = r#"
path "transit/encrypt/shop-app" { capabilities = ["update"] }
path "transit/keys/shop-app"    { capabilities = ["read"] }
path "transit/decrypt/shop-app" { capabilities = ["update"] }
path "transit/encrypt/plain-key" { capabilities = ["update"] }
path "transit/keys/plain-key"    { capabilities = ["read"] }
path "transit/decrypt/plain-key" { capabilities = ["update"] }
"#;

/// What the sealer needs with --no-verify: encrypt, and read for the derived check.
pub const ENCRYPT_ONLY_POLICY: &str = r#"
path "transit/encrypt/shop-app" { capabilities = ["update"] }
path "transit/keys/shop-app"    { capabilities = ["read"] }
"#;

/// Can read the key but not encrypt.
pub const NO_ENCRYPT_POLICY: &str = r#"
path "transit/keys/shop-app" { capabilities = ["read"] }
path "transit/decrypt/shop-app" { capabilities = ["update"] }
"#;

pub struct Bed {
    base: base::Bed,
    /// kubectl's and the operator's kubeconfig (the double's admin).
    pub admin_kubeconfig: PathBuf,
    kubectl: Kubectl,
}

impl Deref for Bed {
    type Target = base::Bed;

    fn deref(&self) -> &base::Bed {
        &self.base
    }
}

impl Bed {
    /// The base bed plus policies `sealer` (the documented one), `encrypt-only` and
    /// `no-encrypt`, and kubernetes role `sealer` for shop/sealer (a pipeline, which
    /// may get, create, update and delete Secrets in shop).
    pub fn new() -> Bed {
        let base = base::Bed::new();
        base.double.create_service_account("shop", "sealer");
        base.double.grant(
            "shop",
            "sealer",
            Rule::new(&["get", "create", "update", "delete"], &["secrets"]),
        );
        base.bao.write_policy("sealer", SEALER_POLICY);
        base.bao.write_policy("encrypt-only", ENCRYPT_ONLY_POLICY);
        base.bao.write_policy("no-encrypt", NO_ENCRYPT_POLICY);
        // A sealer makes many calls with one login.
        wiring::kubernetes_role_with(&base.bao, "sealer", "shop", "sealer", &["sealer"], "60s", 0);
        let admin_kubeconfig = base.double.admin_kubeconfig(base.dir.path());
        let kubectl = Kubectl::with_kubeconfig(&admin_kubeconfig);
        Bed {
            base,
            admin_kubeconfig,
            kubectl,
        }
    }

    /// A Vault token with these policies (and `default`), written to a file; returns the file.
    pub fn vault_token_file(&self, policies: &[&str], num_uses: u32) -> String {
        let token = self.bao.create_token(policies, "10m", num_uses);
        self.file(&format!("vault-token-{}", fastrand::u32(..)), token)
    }

    /// The documented sealer's token file.
    pub fn sealer(&self) -> String {
        self.vault_token_file(&["sealer"], 0)
    }

    /// `secret-zero seal` with `--vault-addr` and `--vault-token-file TOKEN_FILE` plus
    /// `args`, not yet run.
    pub fn seal_cmd(&self, token_file: &str, args: &[&str]) -> Cmd {
        let mut cmd = Cmd::secret_zero();
        cmd.args(["seal", "--vault-addr", self.bao.addr()])
            .args(["--vault-token-file", token_file])
            .args(args);
        cmd
    }

    /// [`seal_cmd`](Self::seal_cmd), run with `stdin` when given.
    pub fn seal(&self, token_file: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = self.seal_cmd(token_file, args);
        if let Some(bytes) = stdin {
            cmd.stdin(bytes);
        }
        cmd.run()
    }

    /// `seal --apply` with the admin kubeconfig, not yet run.
    pub fn seal_apply_cmd(&self, token_file: &str, args: &[&str]) -> Cmd {
        let mut cmd = self.seal_cmd(token_file, &["--apply", "--kubeconfig"]);
        cmd.arg(&self.admin_kubeconfig).args(args);
        cmd
    }

    /// `seal --apply` with the admin kubeconfig.
    pub fn seal_apply(&self, token_file: &str, args: &[&str]) -> Run {
        self.seal_apply_cmd(token_file, args).run()
    }

    /// The binary with exactly `args` and `env` (the test bed's cleared environment).
    pub fn run_seal(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Cmd::secret_zero();
        cmd.args(args).envs(env.iter().copied());
        if let Some(bytes) = stdin {
            cmd.stdin(bytes);
        }
        cmd.run()
    }

    /// The `vault:vN:` text under `data_key` of a stored Secret.
    pub fn stored_ciphertext(&self, ns: &str, name: &str, data_key: &str) -> String {
        ciphertext_of(&self.stored(ns, name), data_key)
    }

    /// Writes to Secrets so far ("VERB PATH"): creates, updates, patches, deletes.
    pub fn secret_writes(&self) -> Vec<String> {
        self.double
            .requests()
            .into_iter()
            .filter(|r| r.contains("/secrets") && !r.starts_with("GET "))
            .collect()
    }

    /// kubectl as the double's admin; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl.ok(args)
    }

    /// A projected-token file for `ns/sa`, audience vault.
    pub fn sa_token_file(&self, ns: &str, sa: &str) -> String {
        self.token_file(ns, sa, "vault", 600).display().to_string()
    }

    /// A kubeconfig carrying shop/`sa`'s own API token.
    pub fn sa_kubeconfig(&self, sa: &str) -> String {
        self.kubeconfig(sa).display().to_string()
    }
}

/// A Secret without its resourceVersion: what "left as it was" compares after a
/// put-back, which necessarily moves the version on.
pub fn without_version(mut secret: Value) -> Value {
    secret["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    secret
}
