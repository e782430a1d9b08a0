//! `secret-zero inject`: golden files for every supported kind, idempotence,
//! unannotated documents untouched, every error case, every output valid against the
//! Kubernetes schemas; `manifests/vault/setup.sh` against a real OpenBao; and the
//! injected sidecar run exactly as written against OpenBao and the API double.
//!
//! Goldens live in tests/inject/golden/; `UPDATE_GOLDEN=1 cargo test --test inject`
//! rewrites them (then review the diff).

#[path = "inject/support.rs"]
mod support;

use std::path::Path;

use secret_zero_testbed::cmd::Cmd;
use serde_json::{Value, json};
use support::*;

// ---------------------------------------------------------------- goldens

#[test]
fn golden_pod() {
    golden("pod", "pod.yaml", &[]);
}

#[test]
fn golden_deployment_with_two_app_uids() {
    golden("deployment", "deployment.yaml", &[]);
}

#[test]
fn golden_statefulset_jwt_and_deliveries() {
    golden("statefulset", "statefulset.yaml", &[]);
}

#[test]
fn golden_daemonset_on_host_network_with_a_socket_file() {
    golden("daemonset", "daemonset.yaml", &[]);
}

#[test]
fn golden_replicaset_abstract_socket() {
    golden("replicaset", "replicaset.yaml", &[]);
}

#[test]
fn golden_job_with_an_init_container_reader_and_resources() {
    golden("job", "job.yaml", &[]);
}

#[test]
fn golden_cronjob_with_every_vault_annotation() {
    golden("cronjob", "cronjob.yaml", &[]);
}

#[test]
fn golden_list() {
    golden("list", "list.yaml", &[]);
}

#[test]
fn golden_list_as_json() {
    golden("list.json", "list.yaml", &["-o", "json"]);
}

#[test]
fn golden_mixed_stream_keeps_untouched_documents_byte_for_byte() {
    let out = golden("mixed", "mixed.yaml", &[]);
    let input = read_in("mixed.yaml");
    // The Service (with its comment) and the ConfigMap (with its quoting) are copied.
    let service = input.split("---\n").nth(1).unwrap();
    assert!(out.contains(service), "the Service was rewritten:\n{out}");
    let config_map = &input[input.find("# settings").unwrap()..];
    assert!(
        out.ends_with(config_map),
        "the ConfigMap was rewritten:\n{out}"
    );
}

#[test]
fn golden_legacy_sidecar_deployment() {
    let out = golden(
        "deployment.legacy",
        "deployment.yaml",
        &["--legacy-sidecar"],
    );
    let object = &yaml_docs(&out)[0];
    let spec = &object["spec"]["template"]["spec"];
    assert!(spec.get("initContainers").is_none(), "{out}");
    let agent = agent_of(spec);
    assert!(agent.get("restartPolicy").is_none());
    assert_eq!(
        spec["containers"].as_array().unwrap().last().unwrap()["name"],
        "secret-zero",
        "the agent goes last, so the app stays the default container"
    );
}

#[test]
fn golden_legacy_sidecar_cronjob_exits_after_delivery() {
    let out = golden("cronjob.legacy", "cronjob.yaml", &["--legacy-sidecar"]);
    let object = &yaml_docs(&out)[0];
    let agent = agent_of(&object["spec"]["jobTemplate"]["spec"]["template"]["spec"]);
    assert!(
        args_of(agent).contains(&"--exit-after-delivery".to_string()),
        "a legacy sidecar must not keep a Job's pod alive: {agent}"
    );
}

/// Everything the example pod has, checked on the injected Deployment.
#[test]
fn the_injected_pod_has_everything_the_example_shows() {
    let out = run_inject(&[&in_path("deployment.yaml")], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let object = &yaml_docs(&out.stdout)[0];
    let template = &object["spec"]["template"];
    let spec = &template["spec"];
    assert_eq!(
        template["metadata"]["annotations"]["secret-zero.dev/status"],
        "injected"
    );
    let agent = agent_of(spec);
    assert_eq!(agent["restartPolicy"], "Always");
    assert_eq!(spec["initContainers"][0]["name"], "secret-zero");
    assert_eq!(
        agent["startupProbe"]["exec"]["command"],
        json!([
            "secret-zero",
            "probe",
            "--socket=/run/secret-zero/agent.sock"
        ])
    );
    let sc = &agent["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(agent["resources"]["requests"]["cpu"], "5m");
    assert_eq!(agent["resources"]["requests"]["memory"], "16Mi");
    assert!(agent["resources"]["limits"]["memory"].is_string());

    let volumes = spec["volumes"].as_array().unwrap();
    let token = volumes
        .iter()
        .find(|v| v["name"] == "secret-zero-token")
        .unwrap();
    assert_eq!(
        token["projected"]["sources"][0]["serviceAccountToken"],
        json!({"audience": "vault", "expirationSeconds": 600, "path": "token"})
    );
    let socket = volumes
        .iter()
        .find(|v| v["name"] == "secret-zero-socket")
        .unwrap();
    assert_eq!(socket["emptyDir"]["medium"], "Memory");

    // The token is mounted into the agent only; the socket into every app container.
    for container in spec["containers"].as_array().unwrap() {
        let mounts: Vec<&str> = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(!mounts.contains(&"secret-zero-token"), "{container}");
        assert!(mounts.contains(&"secret-zero-socket"), "{container}");
        let env = container["env"].as_array().unwrap();
        assert!(
            env.contains(
                &json!({"name": "SECRET_ZERO_SOCKET", "value": "/run/secret-zero/agent.sock"})
            ),
            "{container}"
        );
    }
    // The app containers' uids (pod-level 1000, container-level 2000) may read.
    let args = args_of(agent);
    for flag in [
        "--allow-uid=1000",
        "--allow-uid=2000",
        "--socket-mode=0666",
        "--secret=shop/app-secrets#ciphertext",
        "--role=shop-app",
        "--vault-addr=https://vault.vault.svc:8200",
        "--token-file=/var/run/secrets/secret-zero/token",
    ] {
        assert!(args.contains(&flag.to_string()), "{flag} missing: {args:?}");
    }
    // The existing env, mounts and volumes are kept, in front.
    assert_eq!(spec["containers"][0]["env"][0]["name"], "LOG_LEVEL");
    assert_eq!(spec["containers"][0]["volumeMounts"][0]["name"], "cache");
    assert_eq!(spec["volumes"][0]["name"], "cache");
}

#[test]
fn an_app_without_run_as_user_is_warned_about() {
    let input = pod_yaml("web", "", "");
    let out = run_inject(&["-"], Some(&input));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("sets no runAsUser"),
        "no warning: {}",
        out.stderr
    );
    let agent = agent_of(&yaml_docs(&out.stdout)[0]["spec"]).clone();
    assert!(!args_of(&agent).iter().any(|a| a.starts_with("--allow-uid")));
}

// ---------------------------------------------------------------- idempotence

#[test]
fn injecting_twice_equals_injecting_once() {
    for (input, args) in all_cases() {
        let once = run_inject(&with(&args, &in_path(input)), None);
        assert_eq!(once.code, 0, "{input}: {}", once.stderr);
        let twice = run_inject(&with(&args, "-"), Some(&once.stdout));
        assert_eq!(twice.code, 0, "{input}: {}", twice.stderr);
        assert_eq!(
            twice.stdout, once.stdout,
            "{input} {args:?}: a second inject changed the output"
        );
    }
}

#[test]
fn switching_modes_replaces_the_agent_instead_of_adding_another() {
    let legacy = run_inject(&["--legacy-sidecar", &in_path("deployment.yaml")], None);
    assert_eq!(legacy.code, 0, "{}", legacy.stderr);
    let native = run_inject(&["-"], Some(&legacy.stdout));
    assert_eq!(native.code, 0, "{}", native.stderr);
    let direct = run_inject(&[&in_path("deployment.yaml")], None);
    assert_eq!(yaml_docs(&native.stdout), yaml_docs(&direct.stdout));
}

#[test]
fn a_changed_annotation_updates_an_injected_pod() {
    let once = run_inject(&[&in_path("pod.yaml")], None);
    let changed = once.stdout.replace(
        "secret-zero.dev/role: shop-app",
        "secret-zero.dev/role: shop-other",
    );
    let again = run_inject(&["-"], Some(&changed));
    assert_eq!(again.code, 0, "{}", again.stderr);
    let docs = yaml_docs(&again.stdout);
    let args = args_of(agent_of(&docs[0]["spec"]));
    assert!(args.contains(&"--role=shop-other".to_string()), "{args:?}");
    assert_eq!(
        docs[0]["spec"]["initContainers"].as_array().unwrap().len(),
        1
    );
    assert_eq!(docs[0]["spec"]["volumes"].as_array().unwrap().len(), 2);
}

/// The example manifest is what inject makes of its base, and a fixed point of inject.
#[test]
fn the_example_app_deployment_is_exactly_the_injected_base() {
    let example = repo_path("manifests/example-app/deployment.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    let again = run_inject(&[&example], None);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, text, "inject changes the example manifest");

    let from_base = run_inject(&[&in_path("example-app-base.yaml")], None);
    assert_eq!(from_base.code, 0, "{}", from_base.stderr);
    assert_eq!(
        yaml_docs(&from_base.stdout),
        yaml_docs(&text),
        "manifests/example-app/deployment.yaml differs from inject's output for its base"
    );
}

// ---------------------------------------------------------------- unchanged input

#[test]
fn unannotated_documents_come_out_byte_for_byte() {
    let input = read_in("unannotated.yaml");
    let from_file = run_inject(&[&in_path("unannotated.yaml")], None);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert_eq!(from_file.stdout, input);
    let from_stdin = run_inject(&[], Some(&input));
    assert_eq!(from_stdin.code, 0, "{}", from_stdin.stderr);
    assert_eq!(from_stdin.stdout, input);
    assert!(from_stdin.stderr.is_empty(), "{}", from_stdin.stderr);
}

#[test]
fn several_files_and_the_f_flag_make_one_stream() {
    let out = run_inject(
        &[&in_path("unannotated.yaml"), "-f", &in_path("pod.yaml")],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let docs = yaml_docs(&out.stdout);
    assert_eq!(docs.len(), 5, "{}", out.stdout);
    assert!(out.stdout.starts_with(&read_in("unannotated.yaml")));
    assert_eq!(docs[4]["kind"], "Pod");
    assert_eq!(docs[4]["spec"]["initContainers"][0]["name"], "secret-zero");
}

#[test]
fn empty_input_gives_empty_output() {
    let out = run_inject(&[], Some(""));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

// ---------------------------------------------------------------- errors

#[test]
fn unsupported_kind_is_refused() {
    error_case(
        "unsupported-kind.yaml",
        &[],
        "kind ReplicationController is not supported by inject",
    );
}

#[test]
fn missing_required_annotations_are_named() {
    error_case(
        "missing-annotations.yaml",
        &[],
        "missing required annotations secret-zero.dev/role, secret-zero.dev/vault-addr",
    );
}

#[test]
fn vault_addr_may_come_from_the_flag() {
    let out = run_inject(
        &[
            "--vault-addr",
            "https://vault.example:8200",
            &errors_path("missing-annotations.yaml"),
        ],
        None,
    );
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains("missing required annotation secret-zero.dev/role ("),
        "{}",
        out.stderr
    );
}

#[test]
fn abstract_socket_in_a_host_network_pod_is_refused() {
    error_case(
        "abstract-hostnetwork.yaml",
        &[],
        "an abstract socket (@secret-zero) in a hostNetwork pod would be reachable from the whole node",
    );
}

#[test]
fn bad_max_deliveries_is_refused() {
    error_case(
        "bad-max-deliveries.yaml",
        &[],
        "annotation secret-zero.dev/max-deliveries: \"0\" is not a whole number of at least 1",
    );
}

#[test]
fn an_unknown_annotation_is_taken_for_a_typo() {
    error_case(
        "unknown-annotation.yaml",
        &[],
        "annotation secret-zero.dev/vault-address: unknown secret-zero annotation",
    );
}

#[test]
fn the_annotation_on_the_workload_instead_of_its_template_is_refused() {
    error_case(
        "workload-metadata.yaml",
        &[],
        "move it to the pod template (spec.template.metadata.annotations)",
    );
}

#[test]
fn malformed_yaml_is_refused_with_its_line() {
    error_case("not-yaml.yaml", &[], "document 1: not valid YAML at line 4");
}

#[test]
fn a_container_named_like_the_agent_is_not_overwritten() {
    error_case(
        "name-conflict.yaml",
        &[],
        "already has a container named secret-zero that secret-zero did not add",
    );
}

#[test]
fn an_inject_value_other_than_true_or_false_is_refused() {
    error_case(
        "inject-yes.yaml",
        &[],
        "annotation secret-zero.dev/inject: \"yes\" is neither \"true\" nor \"false\"",
    );
}

#[test]
fn a_bare_secret_name_needs_a_namespace() {
    error_case(
        "no-namespace.yaml",
        &[],
        "names no namespace and the object has none",
    );
    let out = run_inject(&["-n", "shop", &errors_path("no-namespace.yaml")], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("--secret=shop/app-secrets"));
}

#[test]
fn a_legacy_sidecar_cannot_serve_init_containers() {
    let out = run_inject(&["--legacy-sidecar", &in_path("job.yaml")], None);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("init container migrate cannot read from a legacy sidecar"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_error_anywhere_prints_nothing_on_stdout() {
    let mixed = format!(
        "{}---\n{}",
        read_in("pod.yaml"),
        std::fs::read_to_string(errors_path("unsupported-kind.yaml")).unwrap()
    );
    let out = run_inject(&[], Some(&mixed));
    assert_eq!(out.code, 3);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("document 2 (ReplicationController shop/legacy)")
    );
}

#[test]
fn a_missing_file_is_an_input_error() {
    let out = run_inject(&["/nonexistent/deploy.yaml"], None);
    assert_eq!(out.code, 3);
    assert_one_line(&out.stderr);
    assert!(out.stderr.contains("cannot read /nonexistent/deploy.yaml"));
}

// ---------------------------------------------------------------- schemas

/// Every output inject makes here, and every golden, against the Kubernetes schemas.
#[test]
fn every_inject_output_validates_against_the_kubernetes_schemas() {
    require_validator();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (input, args)) in all_cases().into_iter().enumerate() {
        for format in ["yaml", "json"] {
            let mut full = args.clone();
            full.extend(["-o", format]);
            let out = run_inject(&with(&full, &in_path(input)), None);
            assert_eq!(out.code, 0, "{input}: {}", out.stderr);
            let path = dir.path().join(format!("{i}-{input}.{format}"));
            std::fs::write(&path, &out.stdout).unwrap();
            files.push(path.display().to_string());
        }
    }
    for golden in std::fs::read_dir(repo_path("tests/inject/golden")).unwrap() {
        files.push(golden.unwrap().path().display().to_string());
    }
    validate_files(&files);
}

/// manifests/ (each kustomize folder built by kubectl), the goldens, hadolint on the
/// Dockerfile and its build command: the script CI runs.
#[test]
fn manifests_validate_kustomize_builds_and_the_dockerfile_lints() {
    require_validator();
    let out = validate_manifests().current_dir(repo_path("")).run();
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        out.success(),
        "scripts/validate-manifests.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("built manifests/example-app"), "{stdout}");
    assert!(stdout.contains("built manifests/rotate"), "{stdout}");
}

#[test]
fn the_rotate_cronjob_is_monthly_forbids_overlap_and_is_restricted() {
    let text = std::fs::read_to_string(repo_path("manifests/rotate/cronjob.yaml")).unwrap();
    let cron = &yaml_docs(&text)[0];
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let schedule = cron["spec"]["schedule"].as_str().unwrap();
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    assert!(
        fields.len() == 5 && fields[2] != "*" && fields[3] == "*",
        "not monthly: {schedule}"
    );
    assert!(cron["spec"]["jobTemplate"]["spec"]["backoffLimit"].is_u64());
    let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["args"][0], "rotate");
    let token = &pod["volumes"][0]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "vault");

    let rbac = std::fs::read_to_string(repo_path("manifests/rotate/rbac.yaml")).unwrap();
    let role = &yaml_docs(&rbac)[0];
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "update"]}])
    );
}

/// The arguments in every manifest and golden are flags the binary accepts (clap
/// parses everything before `--help`, so an unknown flag or bad value fails).
#[test]
fn every_command_line_in_the_manifests_parses() {
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut from = |text: &str| {
        for doc in yaml_docs(text) {
            collect_command_lines(&doc, &mut lines);
        }
    };
    for rel in [
        "manifests/example-app/deployment.yaml",
        "manifests/rotate/cronjob.yaml",
    ] {
        from(&std::fs::read_to_string(repo_path(rel)).unwrap());
    }
    for golden in std::fs::read_dir(repo_path("tests/inject/golden")).unwrap() {
        from(&std::fs::read_to_string(golden.unwrap().path()).unwrap());
    }
    assert!(lines.len() > 20, "found only {lines:?}");
    assert!(lines.iter().any(|l| l[0] == "rotate"));
    for line in &lines {
        let out = Cmd::secret_zero().args(line).arg("--help").run();
        assert!(
            out.success(),
            "secret-zero {line:?} does not parse: {}",
            out.stderr
        );
    }
}

/// `command` + `args` of every container running secret-zero, and its probes.
fn collect_command_lines(value: &Value, out: &mut Vec<Vec<String>>) {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    match value {
        Value::Object(map) => {
            if map.get("command").map(strings).as_deref() == Some(&["secret-zero".to_string()]) {
                out.push(strings(&map["args"]));
            }
            if let Some(exec) = map.get("exec") {
                let command = strings(&exec["command"]);
                if command.first().map(String::as_str) == Some("secret-zero") {
                    out.push(command[1..].to_vec());
                }
            }
            for v in map.values() {
                collect_command_lines(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_command_lines(v, out)),
        _ => {}
    }
}

#[test]
fn the_example_role_gets_one_secret_only() {
    let text = std::fs::read_to_string(repo_path("manifests/example-app/role.yaml")).unwrap();
    let role = &yaml_docs(&text)[0];
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-secrets"], "verbs": ["get"]}])
    );
}

// ---------------------------------------------------------------- Vault set-up and end to end

/// setup.sh against a bare OpenBao dev server (kubernetes and jwt auth), twice; then
/// the sidecar exactly as `inject` writes it logs in with what setup.sh created,
/// decrypts, and the app reads the document once.
#[test]
fn setup_sh_then_the_injected_sidecar_serves_the_app() {
    let bed = support::bed();
    for run in 1..=2 {
        let out = bed.setup_sh(&[
            ("SZ_AUTH", "both"),
            (
                "SZ_JWKS_URL",
                &format!("{}/openid/v1/jwks", bed.double.url()),
            ),
            (
                "SZ_JWKS_CA_PEM",
                &bed.path("double-ca.pem").display().to_string(),
            ),
            ("SZ_ISSUER", &bed.double.issuer()),
        ]);
        assert!(out.success(), "setup.sh run {run} failed:\n{}", out.stderr);
    }
    let role = bed.bao.read("auth/kubernetes/role/shop-app");
    assert_eq!(role["data"]["audience"], "vault");
    assert_eq!(role["data"]["token_ttl"], 10);
    assert_eq!(role["data"]["token_num_uses"], 3);
    assert_eq!(role["data"]["bound_service_account_names"], json!(["app"]));
    assert_eq!(
        role["data"]["bound_service_account_namespaces"],
        json!(["shop"])
    );
    let key = bed.bao.read("transit/keys/shop-app");
    assert_eq!(key["data"]["derived"], true);
    let policy = bed.bao.read("sys/policies/acl/shop-app-app");
    let policy = policy["data"]["policy"].as_str().unwrap();
    assert!(policy.contains("transit/decrypt/shop-app"), "{policy}");
    assert!(!policy.contains("encrypt/"), "{policy}");

    let doc = bed.seal_document();
    for method in ["kubernetes", "jwt"] {
        let sidecar = bed.inject_and_start(&[("secret-zero.dev/auth-method", method)]);
        let first = sidecar.app_get();
        let stderr = &first.stderr;
        assert_eq!(
            first.code,
            0,
            "{method}: get failed: {stderr}\n{}",
            sidecar.log()
        );
        assert_eq!(first.json(), doc, "{method}");
        let again = sidecar.app_get();
        let stderr = &again.stderr;
        assert_eq!(
            again.code, 11,
            "{method}: a second get must be refused: {stderr}"
        );
    }
}

/// The jwt alternative with the signing public key instead of a JWKS URL; the app
/// policy cannot encrypt.
#[test]
fn setup_sh_jwt_with_a_public_key_and_least_privilege_policies() {
    let bed = support::bed();
    let key = bed.file("signing.pem", bed.double.signing_public_key_pem());
    let out = bed.setup_sh(&[
        ("SZ_AUTH", "jwt"),
        ("SZ_JWT_PUBLIC_KEY", &key),
        ("SZ_ISSUER", &bed.double.issuer()),
    ]);
    assert!(out.success(), "{}", out.stderr);
    let doc = bed.seal_document();
    let sidecar = bed.inject_and_start(&[("secret-zero.dev/auth-method", "jwt")]);
    let got = sidecar.app_get();
    assert_eq!(got.code, 0, "{}\n{}", got.stderr, sidecar.log());
    assert_eq!(got.json(), doc);

    // What the app's token may do: decrypt, nothing else.
    let app = bed.bao.create_token(&["shop-app-app"], "1m", 0);
    let denied = bed.bao.api_as(
        &app,
        "POST",
        "transit/encrypt/shop-app",
        Some(json!({"plaintext": "aGk=", "context": "c2hvcC9hcHAtc2VjcmV0cw=="})),
    );
    assert_eq!(denied.unwrap_err().status, 403);
    let sealer = bed.bao.create_token(&["shop-app-sealer"], "1m", 0);
    bed.bao
        .api_as(
            &sealer,
            "POST",
            "transit/encrypt/shop-app",
            Some(json!({"plaintext": "aGk=", "context": "c2hvcC9hcHAtc2VjcmV0cw=="})),
        )
        .expect("the sealer may encrypt");
    if Path::new(&repo_path("manifests/vault/rotator.hcl")).exists() {
        let rotator = bed.bao.create_token(&["shop-app-rotator"], "1m", 0);
        let denied = bed.bao.api_as(
            &rotator,
            "POST",
            "transit/decrypt/shop-app",
            Some(json!({"ciphertext": "vault:v1:AAAA", "context": "c2hvcC9hcHAtc2VjcmV0cw=="})),
        );
        assert_eq!(denied.unwrap_err().status, 403, "the rotator may decrypt");
    }
}

#[test]
fn setup_sh_explains_what_is_missing() {
    let out = Cmd::new(repo_path("manifests/vault/setup.sh")).run();
    assert!(!out.success());
    assert!(out.stderr.contains("VAULT_ADDR"));
    let help = Cmd::new(repo_path("manifests/vault/setup.sh"))
        .arg("--help")
        .run();
    assert!(help.success());
    let help = help.stdout;
    for var in [
        "SZ_TRANSIT_KEY",
        "SZ_KUBERNETES_HOST",
        "SZ_JWKS_URL",
        "SZ_JWT_PUBLIC_KEY",
    ] {
        assert!(help.contains(var), "--help does not document {var}");
    }
}
