//! The rotation test rig: the test bed's [`Bed`] (OpenBao with the derived key
//! `shop-app` and the plain key `plain-key`, the Kubernetes API double, `serve` as a
//! process) plus the rotator's own least-privilege Vault policy, read from
//! `manifests/vault/rotator.hcl` exactly as shipped, and helpers to seed Secrets, run
//! `rotate` and check every ciphertext as root.

use std::path::{Path, PathBuf};

use secret_zero_testbed::bed::{Bed, ciphertext_of, sealed_secret};
use secret_zero_testbed::cmd::{Cmd, Process, Run};
use secret_zero_testbed::kube_double::Rule;
use secret_zero_testbed::text::{b64, json_of};
use serde_json::{Value, json};

pub const POLICY_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/vault/rotator.hcl");

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

/// The JSON summary `rotate` prints as the last line of stdout.
pub trait Summary {
    fn summary(&self) -> Value;
}

impl Summary for Run {
    fn summary(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no summary on stdout; stderr:\n{}", self.stderr));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {line}"))
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
        let admin_kubeconfig = bed.double.admin_kubeconfig(bed.dir.path());
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
            Rule::new(verbs, &["secrets"]).cluster_wide(),
        );
        double.sa_kubeconfig(self.bed.dir.path(), "secret-zero", name)
    }

    /// A document with a distinct secret in it.
    /// The CronJob's identity: the rotator ServiceAccount's kubeconfig (get, list and
    /// update on Secrets cluster-wide) and its projected token, with a kubernetes-auth
    /// role `rotator` bound to exactly the shipped policy. Returns (kubeconfig, token).
    pub fn as_rotator(&self) -> (PathBuf, PathBuf) {
        let kubeconfig = self.kubeconfig_for("rotator", &["get", "list", "update"]);
        secret_zero_testbed::wiring::kubernetes_role_with(
            &self.bed.bao,
            "rotator",
            "secret-zero",
            "rotator",
            &["rotator"],
            "5m",
            0,
        );
        let jwt = self.bed.token_file("secret-zero", "rotator", "vault", 600);
        (kubeconfig, jwt)
    }

    /// `object` (the Secret `s` as read back) is whole, as [`Rig::seal`] made it: data
    /// keys `ciphertext` and `unrelated` only (besides `also`, a key another writer
    /// adds), `unrelated` unchanged, its `app` label and its Transit key annotation.
    #[allow(dead_code)] // tests/kill.rs and tests/fault_matrix.rs; not tests/rotate.rs
    pub fn assert_whole(s: &Sealed, object: &Value, key: &str, also: Option<&str>, when: &str) {
        let keys: std::collections::BTreeSet<&str> = object["data"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| Some(*k) != also)
            .collect();
        assert_eq!(
            keys,
            std::collections::BTreeSet::from(["ciphertext", "unrelated"]),
            "{} {when}",
            s.id()
        );
        assert_eq!(
            object["data"]["unrelated"],
            json!(b64("kept as is")),
            "{} {when}",
            s.id()
        );
        let meta = &object["metadata"];
        assert_eq!(meta["labels"]["app"], json!(s.name), "{} {when}", s.id());
        assert_eq!(
            meta["annotations"]["secret-zero.dev/transit-key"],
            json!(key),
            "{} {when}",
            s.id()
        );
    }

    pub fn doc(name: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "db_password": format!("pw-{name}-{:016x}", fastrand::u64(..)),
            "port": 5432,
        }))
        .unwrap()
    }

    /// A Secret as `seal` writes it under `key` (identity-bound when `bound`), with a
    /// label `app` and a data key `unrelated` that rotation must keep.
    pub fn seal(&self, ns: &str, name: &str, key: &str, bound: bool) -> Sealed {
        let doc = Rig::doc(name);
        let context = format!("{ns}/{name}");
        let ct = self
            .bed
            .encrypt(key, &doc, bound.then_some(context.as_str()));
        let binding = if bound { "identity" } else { "none" };
        let mut secret = sealed_secret(ns, name, key, binding, &ct);
        secret["metadata"]["labels"]["app"] = json!(name);
        secret["data"]["unrelated"] = json!(b64("kept as is"));
        self.bed.double.put_secret(secret);
        Sealed {
            ns: ns.into(),
            name: name.into(),
            key: key.into(),
            data_key: "ciphertext".into(),
            bound,
            doc,
        }
    }

    /// `n` identity-bound Secrets under `key` in `ns`, the i-th named `name(i)`.
    pub fn seal_many(
        &self,
        ns: &str,
        n: usize,
        key: &str,
        name: impl Fn(usize) -> String,
    ) -> Vec<Sealed> {
        (0..n).map(|i| self.seal(ns, &name(i), key, true)).collect()
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
        ciphertext_of(&self.object(s), &s.data_key)
    }

    /// The key version of the stored ciphertext.
    pub fn version(&self, s: &Sealed) -> u64 {
        version_of(&self.ciphertext(s))
    }

    /// Decrypt `ciphertext` as root with `s`'s key and binding.
    pub fn decrypt(&self, s: &Sealed, ciphertext: &str) -> Result<Vec<u8>, String> {
        let context = s.bound.then(|| s.id());
        self.bed
            .try_decrypt(&s.key, ciphertext, context.as_deref())
            .map_err(|e| format!("{} {}", e.status, e.body))
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
    pub fn rotate_with(&self, token: Option<&Path>, kubeconfig: &Path, extra: &[&str]) -> Run {
        self.command(token, kubeconfig, extra).run()
    }

    /// The same run as a child process, its output discarded (for the kill loop).
    pub fn spawn_rotate(&self, extra: &[&str]) -> Process {
        self.command(Some(&self.token_file), &self.admin_kubeconfig, extra)
            .quiet()
            .spawn()
    }

    fn command(&self, token: Option<&Path>, kubeconfig: &Path, extra: &[&str]) -> Cmd {
        let mut cmd = Cmd::secret_zero();
        cmd.args(["rotate", "--vault-addr", self.bed.bao.addr()]);
        if let Some(token) = token {
            cmd.arg("--vault-token-file").arg(token);
        }
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--retry-timeout", "2s"])
            .args(extra);
        cmd
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
        let reference = format!("{}/{}#{}", s.ns, s.name, s.data_key);
        json_of(&self.bed.serve_and_get(&reference, extra))
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
