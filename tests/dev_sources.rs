//! The development and migration sources, against the Kubernetes API double and the
//! environment: `--plaintext-env` (with `--env-file`), `--plaintext-secret`,
//! `--plaintext-configmap`. Each serves once on the socket like the real source, warns
//! loudly that it is not Secret Zero, and fails in one clear line naming the variable,
//! key or object (never a value) with its exit code.

use std::path::{Path, PathBuf};

use secret_zero_testbed::agent::{self, Agent};
use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::text::b64;
use serde_json::{Value, json};

const SENTINEL: &str = "dev-s3ntinel-4471";

/// `serve --retry-timeout 1s ARGS` on a fresh socket in `dir`, with `env` added.
fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Agent {
    let socket = dir.join(format!("agent-{}.sock", fastrand::u32(..)));
    let socket = socket.display().to_string();
    let mut cmd = agent::serve(&socket);
    cmd.args(["--retry-timeout", "1s"])
        .args(args)
        .envs(env.iter().copied());
    Agent::start(&cmd, socket)
}

/// `--plaintext-env DEFINITION --env-file ENV_FILE`.
fn with_env_file(dir: &Path, definition: &Path, env_file: &Path, env: &[(&str, &str)]) -> Agent {
    let args = [
        "--plaintext-env",
        definition.to_str().unwrap(),
        "--env-file",
        env_file.to_str().unwrap(),
    ];
    spawn(dir, &args, env)
}

/// The one delivery, parsed; then checks the second read is 410.
fn take_document(agent: &mut Agent) -> Value {
    agent.wait_ready();
    let first = agent.get_ok(&[]);
    let second = agent.get(&[]);
    assert_eq!(second.code, 11, "the source is not one-shot");
    first.json()
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
    let mut agent = with_env_file(
        dir.path(),
        &definition,
        &env_file,
        &[("SZT_DBHOST", "db.internal")],
    );
    let document = take_document(&mut agent);
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
    let mut agent = spawn(
        dir.path(),
        &["--plaintext-env", definition.to_str().unwrap()],
        &[("SZT_TOKEN_JSON", SENTINEL)],
    );
    assert_eq!(take_document(&mut agent), json!({"token": SENTINEL}));
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
    let mut agent = with_env_file(
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
    let mut agent = with_env_file(dir.path(), &definition, &env_file, &[]);
    assert_fails(&mut agent, 3, "line 2");
}

#[test]
fn env_file_without_plaintext_env_and_two_sources_are_refused() {
    let run = Cmd::secret_zero()
        .args([
            "serve",
            "--env-file",
            "x.env",
            "--plaintext-file",
            "doc.json",
        ])
        .run();
    assert_eq!(run.code, 2, "a usage error, as clap's own");
    assert!(run.stderr.contains("--env-file goes with --plaintext-env"));
    let run = Cmd::secret_zero()
        .args([
            "serve",
            "--plaintext-env",
            "def.yaml",
            "--plaintext-configmap",
            "shop/x",
        ])
        .run();
    assert_eq!(run.code, 2, "two sources must be refused");
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
        self.double.sa_kubeconfig(self.dir.path(), "shop", sa)
    }

    fn serve(&self, sa: &str, flag: &str, object: &str) -> Agent {
        let kubeconfig = self.kubeconfig(sa);
        spawn(
            self.dir.path(),
            &[flag, object, "--kubeconfig", kubeconfig.to_str().unwrap()],
            &[],
        )
    }
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
        take_document(&mut agent),
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
        take_document(&mut agent),
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
        "data": {"keystore": b64([0xff, 0xfe, 0x00, 0x81]), "ok": b64(SENTINEL.as_bytes())},
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
        take_document(&mut agent),
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
    let mut agent = spawn(
        cluster.dir.path(),
        &["--kubeconfig", kubeconfig.to_str().unwrap()],
        &[("SECRET_ZERO_PLAINTEXT_CONFIGMAP", "shop/from-env")],
    );
    assert_eq!(take_document(&mut agent), json!({"k": "v"}));
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
        "binaryData": {"logo.png": b64([0x89, 0x50, 0x4e, 0x47])},
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
