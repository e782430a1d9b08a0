//! The development and migration sources, against the Kubernetes API double and the
//! environment: `--plaintext-env` (with `--env-file`), `--plaintext-secret`,
//! `--plaintext-configmap`. Each serves once on the socket like the real source, warns
//! loudly that it is not Secret Zero, and fails in one clear line naming the variable,
//! key or object (never a value) with its exit code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use base64::Engine;
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::process;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_secret-zero");
const SENTINEL: &str = "dev-s3ntinel-4471";

struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Agent {
        let socket = dir.join(format!("agent-{}.sock", fastrand::u32(..)));
        let log = dir.join(format!("agent-{}.log", fastrand::u32(..)));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(["--retry-timeout", "1s"])
            .args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("run secret-zero serve");
        Agent { child, socket, log }
    }

    /// `--plaintext-env DEFINITION --env-file ENV_FILE`.
    fn with_env_file(
        dir: &Path,
        definition: &Path,
        env_file: &Path,
        env: &[(&str, &str)],
    ) -> Agent {
        let args = [
            "--plaintext-env",
            definition.to_str().unwrap(),
            "--env-file",
            env_file.to_str().unwrap(),
        ];
        Agent::spawn(dir, &args, env)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        process::wait_ready(&mut self.child, Path::new(BIN), &self.socket, || {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        });
    }

    /// Waits for the agent to fail; its exit code and log.
    fn wait_exit(&mut self) -> (i32, String) {
        process::wait_exit(&mut self.child, || {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        })
    }

    fn get(&self) -> Output {
        Command::new(BIN)
            .arg("get")
            .arg("--socket")
            .arg(&self.socket)
            .output()
            .unwrap()
    }

    /// The one delivery, parsed; then checks the second read is 410.
    fn take_document(&mut self) -> Value {
        self.wait_ready();
        let first = self.get();
        assert!(
            first.status.success(),
            "get failed: {}\n{}",
            String::from_utf8_lossy(&first.stderr),
            self.log()
        );
        let second = self.get();
        assert_eq!(second.status.code(), Some(11), "the source is not one-shot");
        serde_json::from_slice(&first.stdout).unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The failure is one line naming `needle`, exit `code`, and the value never shows.
fn assert_fails(agent: &mut Agent, code: i32, needle: &str) {
    let (exit, log) = agent.wait_exit();
    assert_eq!(exit, code, "wrong exit code:\n{log}");
    assert!(
        log.contains(needle),
        "the log does not say {needle:?}:\n{log}"
    );
    assert!(
        !log.contains(SENTINEL),
        "a value leaked into the log:\n{log}"
    );
}

fn assert_loud(agent: &Agent, what: &str) {
    let log = agent.log();
    assert!(
        log.contains("NOT Secret Zero") && log.contains(what) && log.contains("WARN"),
        "no loud warning naming {what:?}:\n{log}"
    );
}

// ---------------------------------------------------------------- --plaintext-env

#[test]
fn plaintext_env_maps_variables_to_keys_and_the_environment_beats_the_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("env_definition.yaml");
    std::fs::write(
        &definition,
        "db_host: SZT_DBHOST\ndb_password: SZT_DBPASS\napi_key: SZT_APIKEY\n",
    )
    .unwrap();
    let env_file = dir.path().join("env.env");
    std::fs::write(
        &env_file,
        format!(
            "# the old tool's env.env\nexport SZT_DBPASS=\"{SENTINEL} with \\\"quotes\\\"\"\nSZT_APIKEY='$literal #1'\nSZT_DBHOST=from-file\n"
        ),
    )
    .unwrap();
    let mut agent = Agent::with_env_file(
        dir.path(),
        &definition,
        &env_file,
        &[("SZT_DBHOST", "db.internal")],
    );
    let document = agent.take_document();
    assert_eq!(
        document,
        json!({
            "db_host": "db.internal",
            "db_password": format!("{SENTINEL} with \"quotes\""),
            "api_key": "$literal #1",
        })
    );
    assert_loud(&agent, "environment");
    assert!(!agent.log().contains(SENTINEL));
}

#[test]
fn plaintext_env_reads_a_json_definition_without_an_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("env_definition.json");
    std::fs::write(&definition, r#"{"token": "SZT_TOKEN_JSON"}"#).unwrap();
    let mut agent = Agent::spawn(
        dir.path(),
        &["--plaintext-env", definition.to_str().unwrap()],
        &[("SZT_TOKEN_JSON", SENTINEL)],
    );
    assert_eq!(agent.take_document(), json!({"token": SENTINEL}));
}

#[test]
fn plaintext_env_with_a_missing_variable_names_it_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("def.yaml");
    std::fs::write(
        &definition,
        "present: SZT_PRESENT\nabsent: SZT_SURELY_UNSET_42\n",
    )
    .unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "OTHER=1\n").unwrap();
    let mut agent = Agent::with_env_file(
        dir.path(),
        &definition,
        &env_file,
        &[("SZT_PRESENT", SENTINEL)],
    );
    assert_fails(&mut agent, 3, "SZT_SURELY_UNSET_42");
    assert!(agent.log().contains("\"absent\""), "{}", agent.log());
}

#[test]
fn plaintext_env_with_a_broken_env_file_gives_the_line_not_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("def.yaml");
    std::fs::write(&definition, "a: SZT_A\n").unwrap();
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, format!("SZT_A=1\n{SENTINEL} no equals sign\n")).unwrap();
    let mut agent = Agent::with_env_file(dir.path(), &definition, &env_file, &[]);
    assert_fails(&mut agent, 3, "line 2");
}

#[test]
fn env_file_without_plaintext_env_and_two_sources_are_refused() {
    let out = Command::new(BIN)
        .args([
            "serve",
            "--env-file",
            "x.env",
            "--plaintext-file",
            "doc.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--env-file goes with --plaintext-env"));
    let out = Command::new(BIN)
        .args([
            "serve",
            "--plaintext-env",
            "def.yaml",
            "--plaintext-configmap",
            "shop/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "two sources must be refused");
}

// ------------------------------------------- --plaintext-secret / --plaintext-configmap

struct Cluster {
    double: KubeDouble,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// ServiceAccount shop/app may get secrets and configmaps; shop/nosy may get secrets only.
    fn new() -> Cluster {
        let double = KubeDouble::start();
        double.create_service_account("shop", "app");
        double.create_service_account("shop", "nosy");
        double.grant(
            "shop",
            "app",
            Rule::new(&["get"], &["secrets", "configmaps"]),
        );
        double.grant("shop", "nosy", Rule::new(&["get"], &["secrets"]));
        Cluster {
            double,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn kubeconfig(&self, sa: &str) -> PathBuf {
        let path = self.dir.path().join(format!("kubeconfig-{sa}"));
        let token = self
            .double
            .issue_token("shop", sa, &[&self.double.issuer()], 3600);
        self.double.write_kubeconfig(&path, &token);
        path
    }

    fn serve(&self, sa: &str, flag: &str, object: &str) -> Agent {
        let kubeconfig = self.kubeconfig(sa);
        Agent::spawn(
            self.dir.path(),
            &[flag, object, "--kubeconfig", kubeconfig.to_str().unwrap()],
            &[],
        )
    }
}

fn b64(text: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn plaintext_secret_serves_every_key_once() {
    let cluster = Cluster::new();
    cluster.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "plain"},
        "data": {"API_KEY": b64(SENTINEL.as_bytes()), "db.host": b64(b"db.internal")},
    }));
    let mut agent = cluster.serve("app", "--plaintext-secret", "shop/plain");
    assert_eq!(
        agent.take_document(),
        json!({"API_KEY": SENTINEL, "db.host": "db.internal"})
    );
    assert_loud(&agent, "Secret");
    assert!(!agent.log().contains(SENTINEL));
}

#[test]
fn plaintext_secret_with_a_key_serves_that_documents_value() {
    let cluster = Cluster::new();
    cluster.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "config"},
        "stringData": {"config.yaml": format!("token: {SENTINEL}\nport: 8080\n"), "other": "x"},
    }));
    let mut agent = cluster.serve("app", "--plaintext-secret", "shop/config#config.yaml");
    assert_eq!(
        agent.take_document(),
        json!({"token": SENTINEL, "port": 8080})
    );
}

#[test]
fn plaintext_secret_with_a_missing_key_names_it_and_exits_3() {
    let cluster = Cluster::new();
    cluster.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "config"},
        "stringData": {"config.json": format!("{{\"a\": \"{SENTINEL}\"}}")},
    }));
    let mut agent = cluster.serve("app", "--plaintext-secret", "shop/config#settings.json");
    assert_fails(&mut agent, 3, "no key \"settings.json\"");
}

#[test]
fn plaintext_secret_with_binary_data_is_refused_naming_the_key() {
    let cluster = Cluster::new();
    cluster.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "bin"},
        "data": {"keystore": b64(&[0xff, 0xfe, 0x00, 0x81]), "ok": b64(SENTINEL.as_bytes())},
    }));
    let mut agent = cluster.serve("app", "--plaintext-secret", "shop/bin");
    assert_fails(&mut agent, 3, "\"keystore\"");
    assert!(agent.log().contains("binary"), "{}", agent.log());
}

#[test]
fn plaintext_configmap_serves_every_key_once() {
    let cluster = Cluster::new();
    cluster.double.put_configmap(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": "shop", "name": "common-config"},
        "data": {"LOG_LEVEL": "debug", "feature_x": SENTINEL},
    }));
    let mut agent = cluster.serve("app", "--plaintext-configmap", "shop/common-config");
    assert_eq!(
        agent.take_document(),
        json!({"LOG_LEVEL": "debug", "feature_x": SENTINEL})
    );
    assert_loud(&agent, "ConfigMap");
    assert!(
        cluster
            .double
            .requests()
            .contains(&"GET /api/v1/namespaces/shop/configmaps/common-config".to_string()),
        "{:?}",
        cluster.double.requests()
    );
}

#[test]
fn the_kube_sources_read_their_names_from_the_environment_too() {
    let cluster = Cluster::new();
    cluster.double.put_configmap(json!({
        "metadata": {"namespace": "shop", "name": "from-env"},
        "data": {"k": "v"},
    }));
    let kubeconfig = cluster.kubeconfig("app");
    let mut agent = Agent::spawn(
        cluster.dir.path(),
        &["--kubeconfig", kubeconfig.to_str().unwrap()],
        &[("SECRET_ZERO_PLAINTEXT_CONFIGMAP", "shop/from-env")],
    );
    assert_eq!(agent.take_document(), json!({"k": "v"}));
}

#[test]
fn an_absent_configmap_is_one_line_and_exit_7() {
    let cluster = Cluster::new();
    let mut agent = cluster.serve("app", "--plaintext-configmap", "shop/missing");
    assert_fails(&mut agent, 7, "ConfigMap shop/missing does not exist");
}

#[test]
fn a_forbidden_configmap_is_403_and_exit_7() {
    let cluster = Cluster::new();
    cluster.double.put_configmap(json!({
        "metadata": {"namespace": "shop", "name": "common-config"},
        "data": {"feature_x": SENTINEL},
    }));
    let mut agent = cluster.serve("nosy", "--plaintext-configmap", "shop/common-config");
    assert_fails(&mut agent, 7, "forbidden");
    assert!(agent.log().contains("configmaps"), "{}", agent.log());
}

#[test]
fn configmap_binary_data_is_refused_naming_the_key() {
    let cluster = Cluster::new();
    cluster.double.put_configmap(json!({
        "metadata": {"namespace": "shop", "name": "mixed"},
        "data": {"text": SENTINEL},
        "binaryData": {"logo.png": b64(&[0x89, 0x50, 0x4e, 0x47])},
    }));
    let mut agent = cluster.serve("app", "--plaintext-configmap", "shop/mixed");
    assert_fails(&mut agent, 3, "\"logo.png\"");
}

#[test]
fn the_double_serves_configmaps_on_the_wire_with_rbac() {
    let cluster = Cluster::new();
    let double = &cluster.double;
    let admin = double.admin_token();
    let (code, _) = double.call(
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        Some(&admin),
        Some(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "wire"}, "data": {"a": "1"}})),
    );
    assert_eq!(code, 201);
    let stored = double.configmap("shop", "wire").unwrap();
    assert_eq!(stored["metadata"]["namespace"], "shop");
    assert!(stored["metadata"]["resourceVersion"].is_string());

    let nosy = double.issue_token("shop", "nosy", &[&double.issuer()], 600);
    let (code, body) = double.call(
        "GET",
        "/api/v1/namespaces/shop/configmaps/wire",
        Some(&nosy),
        None,
    );
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["kind"], "Status");
    let (code, body) = double.call(
        "GET",
        "/api/v1/namespaces/shop/configmaps/absent",
        Some(&admin),
        None,
    );
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    let (code, body) = double.call(
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        Some(&admin),
        Some(&json!({"metadata": {"name": "bad"}, "data": {"a": 1}})),
    );
    assert_eq!(code, 422, "{body}");
    let (_, discovery) = double.call("GET", "/api/v1", Some(&admin), None);
    assert!(
        discovery["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "configmaps"),
        "{discovery}"
    );
}
