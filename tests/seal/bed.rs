//! The test bed for `seal`: a real OpenBao with Transit keys, sealer policies and the
//! agent's kubernetes auth, the Kubernetes API double, and the binaries run as processes
//! (`secret-zero seal`, `serve`, `get`, and kubectl).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use base64::Engine;
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::openbao::OpenBao;
use secret_zero_testbed::process::Agent;
use secret_zero_testbed::wiring;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-zero");
/// A derived key: seal binds to the Secret's identity by default.
pub const DERIVED: &str = "shop-app";
/// A plain key, as the old tool used.
pub const PLAIN: &str = "plain-key";

/// The least-privilege sealer policy of docs/seal.md, for both keys.
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
    pub bao: OpenBao,
    pub double: KubeDouble,
    pub dir: tempfile::TempDir,
    /// kubectl's and the operator's kubeconfig (the double's admin).
    pub admin_kubeconfig: PathBuf,
}

/// What a finished `seal` printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "seal failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Bed {
    /// OpenBao with a derived key `shop-app` and a plain key `plain-key`; policies
    /// `sealer` (the documented one), `encrypt-only`, `no-encrypt`, and `app` (decrypt
    /// only, for serve); kubernetes auth with role `shop-app` for shop/app (the agent)
    /// and role `sealer` for shop/sealer (a pipeline).
    pub fn new() -> Bed {
        let double = KubeDouble::start();
        for (ns, sa) in [("shop", "app"), ("shop", "sealer")] {
            double.create_service_account(ns, sa);
        }
        double.grant("shop", "app", Rule::new(&["get"], &["secrets"]));
        double.grant(
            "shop",
            "sealer",
            Rule::new(&["get", "create", "update", "delete"], &["secrets"]),
        );

        let bao = OpenBao::start();
        bao.enable_transit("transit");
        bao.create_key("transit", DERIVED, true);
        bao.create_key("transit", PLAIN, false);
        bao.write_policy("sealer", SEALER_POLICY);
        bao.write_policy("encrypt-only", ENCRYPT_ONLY_POLICY);
        bao.write_policy("no-encrypt", NO_ENCRYPT_POLICY);
        bao.write_policy(
            "app",
            r#"path "transit/decrypt/shop-app" { capabilities = ["update"] }
path "transit/decrypt/plain-key" { capabilities = ["update"] }"#,
        );
        wiring::kubernetes_auth(&bao, &double);
        for (role, sa, policy) in [("shop-app", "app", "app"), ("sealer", "sealer", "sealer")] {
            bao.write(
                &format!("auth/kubernetes/role/{role}"),
                json!({
                    "bound_service_account_names": [sa],
                    "bound_service_account_namespaces": ["shop"],
                    "audience": "vault",
                    "token_policies": [policy],
                    "token_ttl": "60s",
                }),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let admin_kubeconfig = dir.path().join("admin-kubeconfig");
        double.write_kubeconfig(&admin_kubeconfig, &double.admin_token());
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Bed {
            bao,
            double,
            dir,
            admin_kubeconfig,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file in the bed's directory; returns its path as text.
    pub fn file(&self, name: &str, content: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    /// A token with these policies (and `default`), written to a file; returns the file.
    pub fn token_file(&self, policies: &[&str], num_uses: u32) -> String {
        let token = self.bao.create_token(policies, "10m", num_uses);
        self.file(
            &format!("vault-token-{}", fastrand::u32(..)),
            token.as_bytes(),
        )
    }

    /// The documented sealer's token file.
    pub fn sealer(&self) -> String {
        self.token_file(&["sealer"], 0)
    }

    /// `secret-zero seal` with `--vault-addr` and `--vault-token-file TOKEN_FILE` plus `args`,
    /// in a clean environment (no VAULT_*, SECRET_ZERO_*, kubeconfig or ~/.vault-token).
    pub fn seal(&self, token_file: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut all = vec![
            "seal",
            "--vault-addr",
            self.bao.addr(),
            "--vault-token-file",
            token_file,
        ];
        all.extend_from_slice(args);
        self.run_seal(&all, &[], stdin)
    }

    /// `seal --apply` with the admin kubeconfig.
    pub fn seal_apply(&self, token_file: &str, args: &[&str]) -> Run {
        let kubeconfig = self.admin_kubeconfig.display().to_string();
        let mut all = vec!["--apply", "--kubeconfig", &kubeconfig];
        all.extend_from_slice(args);
        self.seal(token_file, &all, None)
    }

    /// The binary with exactly `args` and `env`, in a clean environment.
    pub fn run_seal(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
        let child = self.command(args, env, stdin.is_some());
        finish(child, stdin)
    }

    /// Start the binary; the caller waits with [`finish`].
    pub fn command(&self, args: &[&str], env: &[(&str, &str)], piped_stdin: bool) -> Child {
        let mut command = Command::new(BIN);
        command.args(args);
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("VAULT_")
                || name.starts_with("SECRET_ZERO_")
                || name.starts_with("KUBERNETES_")
                || name == "KUBECONFIG"
                || name == "RUST_LOG"
            {
                command.env_remove(name);
            }
        }
        command
            .env("HOME", self.path("home"))
            .envs(env.iter().copied())
            .stdin(if piped_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run secret-zero")
    }

    /// Decrypt as root, as an operator would by hand.
    pub fn decrypt(&self, key: &str, ciphertext: &str, context: Option<&str>) -> Vec<u8> {
        let mut body = json!({ "ciphertext": ciphertext });
        if let Some(context) = context {
            body["context"] = json!(b64(context.as_bytes()));
        }
        let out = self.bao.write(&format!("transit/decrypt/{key}"), body);
        base64::engine::general_purpose::STANDARD
            .decode(out["data"]["plaintext"].as_str().unwrap())
            .unwrap()
    }

    /// Decrypt as root, or Vault's refusal.
    pub fn try_decrypt(
        &self,
        key: &str,
        ciphertext: &str,
        context: Option<&str>,
    ) -> Result<(), String> {
        let mut body = json!({ "ciphertext": ciphertext });
        if let Some(context) = context {
            body["context"] = json!(b64(context.as_bytes()));
        }
        self.bao
            .api("POST", &format!("transit/decrypt/{key}"), Some(body))
            .map(|_| ())
            .map_err(|e| e.body)
    }

    /// The stored Secret, which must exist.
    pub fn stored(&self, ns: &str, name: &str) -> Value {
        self.double
            .secret(ns, name)
            .unwrap_or_else(|| panic!("Secret {ns}/{name} is not in the cluster"))
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

    /// kubectl as the double's admin, with its own HOME.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let kubectl = secret_zero_testbed::tools::kubectl();
        let out: Output = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&self.admin_kubeconfig)
            .args(args)
            .env("HOME", self.path("home"))
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A projected-token file for `ns/sa`, audience vault.
    pub fn sa_token_file(&self, ns: &str, sa: &str) -> String {
        self.file(
            &format!("sa-token-{ns}-{sa}-{}", fastrand::u32(..)),
            self.double.issue_token(ns, sa, &["vault"], 600).as_bytes(),
        )
    }

    /// A kubeconfig carrying `shop/sa`'s own API token.
    pub fn sa_kubeconfig(&self, sa: &str) -> String {
        let path = self.path(&format!("kubeconfig-{sa}"));
        let token = self
            .double
            .issue_token("shop", sa, &[&self.double.issuer()], 3600);
        self.double.write_kubeconfig(&path, &token);
        path.display().to_string()
    }

    /// Run `serve` for `--secret SECRET` (plus `extra`) as shop/app, `get` once, stop it;
    /// returns the delivered document.
    pub fn serve_and_get(&self, secret: &str, extra: &[&str]) -> Vec<u8> {
        let socket = self
            .path(&format!("agent-{}.sock", fastrand::u32(..)))
            .display()
            .to_string();
        let token = self.sa_token_file("shop", "app");
        let kubeconfig = self.sa_kubeconfig("app");
        let mut args = vec![
            "serve",
            "--vault-addr",
            self.bao.addr(),
            "--role",
            "shop-app",
            "--token-file",
            &token,
            "--kubeconfig",
            &kubeconfig,
            "--socket",
            &socket,
            "--retry-timeout",
            "2s",
            "--secret",
            secret,
        ];
        args.extend_from_slice(extra);
        let mut agent = Agent::spawn(Path::new(BIN), &args, self.dir.path());
        agent.wait_ready(&socket);
        let out = Command::new(BIN)
            .args(["get", "--socket", &socket])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "get failed: {}\nagent log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            agent.log()
        );
        out.stdout
    }
}

/// Feed `stdin` (if any) and collect the result.
pub fn finish(mut child: Child, stdin: Option<&[u8]>) -> Run {
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // A writer thread: a large document must not deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// The `vault:vN:` text under `data_key` of a Secret as JSON (base64 in `data`).
pub fn ciphertext_of(secret: &Value, data_key: &str) -> String {
    let encoded = secret["data"][data_key]
        .as_str()
        .unwrap_or_else(|| panic!("no data key {data_key} in {secret}"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
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
