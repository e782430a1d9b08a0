//! The rotation test rig: the serve test bed (OpenBao with the derived key `shop-app`
//! and the plain key `plain-key`, the Kubernetes API double, `serve` as a process) plus
//! the rotator's own least-privilege Vault policy, read from
//! `manifests/vault/rotator.hcl` exactly as shipped, and helpers to seed Secrets, run
//! `rotate` and check every ciphertext as root.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::{Value, json};

use crate::bed::{BIN, Bed, b64, get, json_of};

pub const POLICY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/vault/rotator.hcl");
pub const PLAIN_KEY: &str = "plain-key";

/// A Secret the test sealed, and the document it must still decrypt to.
#[derive(Clone, Debug)]
pub struct Sealed {
    pub ns: String,
    pub name: String,
    pub key: String,
    pub data_key: String,
    pub bound: bool,
    pub doc: Vec<u8>,
}

impl Sealed {
    pub fn id(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }
}

/// What one `rotate` run left.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON summary: the last line of stdout.
    pub fn summary(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no summary on stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "rotate exited {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

pub struct Rig {
    pub bed: Bed,
    /// A token whose only policy is rotator.hcl (no default policy either).
    pub token_file: PathBuf,
    /// The double's admin credentials.
    pub admin_kubeconfig: PathBuf,
}

impl Rig {
    pub fn new() -> Rig {
        let bed = Bed::new();
        let policy = std::fs::read_to_string(POLICY_FILE).expect("manifests/vault/rotator.hcl");
        bed.bao.write_policy("rotator", &policy);
        let token_file = bed.path("rotator-token");
        std::fs::write(&token_file, rig_token(&bed, "rotator")).unwrap();
        let admin_kubeconfig = bed.path("admin-kubeconfig");
        bed.double
            .write_kubeconfig(&admin_kubeconfig, &bed.double.admin_token());
        Rig {
            bed,
            token_file,
            admin_kubeconfig,
        }
    }

    /// A token holding exactly `policy`.
    pub fn token_with(&self, policy: &str) -> PathBuf {
        let path = self.bed.path(&format!("token-{policy}"));
        std::fs::write(&path, rig_token(&self.bed, policy)).unwrap();
        path
    }

    /// A kubeconfig for the ServiceAccount `secret-zero/NAME`, which gets `verbs` on
    /// Secrets in every namespace (a ClusterRoleBinding).
    pub fn kubeconfig_for(&self, name: &str, verbs: &[&str]) -> PathBuf {
        let double = &self.bed.double;
        double.create_service_account("secret-zero", name);
        double.grant(
            "secret-zero",
            name,
            secret_zero_testbed::kube_double::Rule::new(verbs, &["secrets"]).cluster_wide(),
        );
        let token = double.issue_token("secret-zero", name, &[&double.issuer()], 3600);
        let path = self.bed.path(&format!("kubeconfig-rotator-{name}"));
        double.write_kubeconfig(&path, &token);
        path
    }

    /// A document with a distinct secret in it.
    pub fn doc(name: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "db_password": format!("pw-{name}-{:016x}", fastrand::u64(..)),
            "port": 5432,
        }))
        .unwrap()
    }

    /// A Secret as `seal` writes it under `key` (identity-bound when `bound`).
    pub fn seal(&self, ns: &str, name: &str, key: &str, bound: bool) -> Sealed {
        let doc = Rig::doc(name);
        let context = format!("{ns}/{name}");
        let ct = self
            .bed
            .encrypt(key, &doc, bound.then_some(context.as_str()));
        self.bed.double.put_secret(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {
                "namespace": ns, "name": name,
                "labels": {"app.kubernetes.io/managed-by": "secret-zero", "app": name},
                "annotations": {
                    "secret-zero.dev/transit-mount": "transit",
                    "secret-zero.dev/transit-key": key,
                    "secret-zero.dev/binding": if bound { "identity" } else { "none" },
                    "secret-zero.dev/format": "json",
                },
            },
            "data": {"ciphertext": b64(ct.as_bytes()), "unrelated": b64(b"kept as is")},
        }));
        Sealed {
            ns: ns.into(),
            name: name.into(),
            key: key.into(),
            data_key: "ciphertext".into(),
            bound,
            doc,
        }
    }

    /// A Secret as the old Python tool wrote it: `secrets.json`, no labels, no binding.
    pub fn seal_legacy(&self, ns: &str, name: &str, key: &str) -> Sealed {
        let doc = Rig::doc(name);
        let ct = self.bed.encrypt(key, &doc, None);
        self.bed.put_legacy(ns, name, &ct);
        Sealed {
            ns: ns.into(),
            name: name.into(),
            key: key.into(),
            data_key: "secrets.json".into(),
            bound: false,
            doc,
        }
    }

    /// The stored Secret.
    pub fn object(&self, s: &Sealed) -> Value {
        self.bed
            .double
            .secret(&s.ns, &s.name)
            .unwrap_or_else(|| panic!("{} is gone", s.id()))
    }

    /// The stored ciphertext.
    pub fn ciphertext(&self, s: &Sealed) -> String {
        let object = self.object(s);
        let encoded = object["data"][&s.data_key]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no {}", s.id(), s.data_key));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// The key version of the stored ciphertext.
    pub fn version(&self, s: &Sealed) -> u64 {
        version_of(&self.ciphertext(s))
    }

    /// Decrypt `ciphertext` as root with `s`'s key and binding.
    pub fn decrypt(&self, s: &Sealed, ciphertext: &str) -> Result<Vec<u8>, String> {
        let mut body = json!({ "ciphertext": ciphertext });
        if s.bound {
            body["context"] = json!(b64(s.id().as_bytes()));
        }
        let answer = self
            .bed
            .bao
            .api("POST", &format!("transit/decrypt/{}", s.key), Some(body))
            .map_err(|e| format!("{} {}", e.status, e.body))?;
        let plaintext = answer["data"]["plaintext"].as_str().unwrap_or_default();
        Ok(base64::engine::general_purpose::STANDARD
            .decode(plaintext)
            .unwrap())
    }

    /// Panics unless every Secret decrypts (as root) to its original document.
    pub fn assert_all_decrypt(&self, all: &[Sealed], when: &str) {
        for s in all {
            let ct = self.ciphertext(s);
            match self.decrypt(s, &ct) {
                Ok(doc) => assert_eq!(doc, s.doc, "{}: wrong plaintext {when}", s.id()),
                Err(e) => panic!("{} ({ct:.20}...) does not decrypt {when}: {e}", s.id()),
            }
        }
    }

    /// `latest_version`, `min_decryption_version`, ... of a key, as root.
    pub fn key_info(&self, key: &str) -> Value {
        self.bed.bao.read(&format!("transit/keys/{key}"))["data"].clone()
    }

    pub fn latest(&self, key: &str) -> u64 {
        self.key_info(key)["latest_version"].as_u64().unwrap()
    }

    /// Rotate `key` as root (to make Secrets at mixed versions).
    pub fn rotate_as_root(&self, key: &str) {
        self.bed
            .bao
            .write(&format!("transit/keys/{key}/rotate"), json!({}));
    }

    /// `rotate` with the rotator token and the admin kubeconfig, plus `extra`.
    pub fn rotate(&self, extra: &[&str]) -> Run {
        self.rotate_with(Some(&self.token_file), &self.admin_kubeconfig, extra)
    }

    /// `rotate` with a given token file (or none: then `extra` says how to log in).
    pub fn rotate_with(
        &self,
        token: Option<&PathBuf>,
        kubeconfig: &PathBuf,
        extra: &[&str],
    ) -> Run {
        let out = self
            .command(token, kubeconfig, extra)
            .output()
            .expect("run secret-zero rotate");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The same run as a child process (for the kill loop).
    pub fn spawn_rotate(&self, extra: &[&str]) -> Child {
        self.command(Some(&self.token_file), &self.admin_kubeconfig, extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run secret-zero rotate")
    }

    fn command(&self, token: Option<&PathBuf>, kubeconfig: &PathBuf, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("rotate")
            .arg("--vault-addr")
            .arg(self.bed.bao.addr());
        if let Some(token) = token {
            command.arg("--vault-token-file").arg(token);
        }
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--retry-timeout")
            .arg("2s")
            .args(extra)
            .stdin(Stdio::null());
        for var in std::env::vars().map(|(k, _)| k) {
            if var.starts_with("SECRET_ZERO_") || var.starts_with("VAULT_") || var == "KUBECONFIG" {
                command.env_remove(var);
            }
        }
        command.env_remove("KUBERNETES_SERVICE_HOST");
        command
    }

    /// The double's request log from index `from` on.
    pub fn requests_since(&self, from: usize) -> Vec<String> {
        self.bed.double.requests()[from..].to_vec()
    }

    pub fn request_mark(&self) -> usize {
        self.bed.double.requests().len()
    }

    /// `serve` the Secret (in namespace shop, readable by shop/app) and `get` it once.
    pub fn serve_once(&self, s: &Sealed, extra: &[&str]) -> Value {
        let socket = self.bed.socket();
        let reference = format!("{}/{}#{}", s.ns, s.name, s.data_key);
        let mut args = vec!["--secret", reference.as_str()];
        args.extend_from_slice(extra);
        let mut agent = self.bed.serve(&socket, &args);
        agent.wait_ready(&socket);
        let (code, out, err) = get(&socket, &[]);
        assert_eq!(code, 0, "get failed: {err}\n{}", agent.log());
        json_of(&out)
    }
}

/// The key version of a `vault:vN:...` ciphertext.
pub fn version_of(ciphertext: &str) -> u64 {
    ciphertext
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split(':').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a ciphertext: {ciphertext}"))
}

/// A token with only `policy`: not even `default`, so nothing else can help it.
fn rig_token(bed: &Bed, policy: &str) -> String {
    let answer = bed.bao.write(
        "auth/token/create",
        json!({"policies": [policy], "no_default_policy": true, "ttl": "1h"}),
    );
    answer["auth"]["client_token"].as_str().unwrap().to_string()
}
