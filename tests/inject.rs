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
    // No uid of its own: it inherits the pod's runAsUser (1000).
    assert!(sc.get("runAsUser").is_none(), "{sc}");
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
    // The app containers' uids may read: pod-level 1000 is the agent's own (always
    // admitted), container-level 2000 is named.
    let args = args_of(agent);
    assert!(!args.contains(&"--allow-uid=1000".to_string()), "{args:?}");
    for flag in [
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

/// A pod that says nothing about automount, under a ServiceAccount that turns it off
/// (manifests/example-app/serviceaccount.yaml), gets no API token from kubelet; inject
/// cannot see the ServiceAccount, so the agent always gets API credentials of its own,
/// mounted where the in-cluster client looks, and the app containers never do.
#[test]
fn the_agent_gets_its_own_api_token_whatever_the_service_account_says() {
    for pod_automount in [None, Some(true), Some(false)] {
        let mut pod: Value = serde_json::from_str(&uid_pod(json!({}), None, None)).unwrap();
        pod["spec"]["serviceAccountName"] = json!("app");
        if let Some(automount) = pod_automount {
            pod["spec"]["automountServiceAccountToken"] = json!(automount);
        }
        let out = run_inject(&["-o", "json"], Some(&pod.to_string()));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let spec = &out.json()["spec"];
        let agent = agent_of(spec);
        let mount = agent["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == POD_SERVICEACCOUNT_DIR)
            .unwrap_or_else(|| panic!("{pod_automount:?}: no API token in the agent: {agent}"));
        assert_eq!(
            mount,
            &json!({"name": "secret-zero-kube-api", "mountPath": POD_SERVICEACCOUNT_DIR, "readOnly": true})
        );
        let volume = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "secret-zero-kube-api")
            .expect("the API token volume");
        let paths: Vec<&Value> = volume["projected"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                [
                    &s["serviceAccountToken"]["path"],
                    &s["configMap"]["items"][0]["path"],
                    &s["downwardAPI"]["items"][0]["path"],
                ]
            })
            .filter(|p| p.is_string())
            .collect();
        assert_eq!(
            paths,
            [&json!("token"), &json!("ca.crt"), &json!("namespace")]
        );
        let app = &spec["containers"][0];
        assert!(
            !app["volumeMounts"]
                .to_string()
                .contains("secret-zero-kube-api"),
            "{app}"
        );
    }
}

// ---------------------------------------------------------------- the agent's uid

/// A Pod for shop/app with `annotations` added, `pod_sc` as the pod's securityContext
/// and `app_sc` as the app container's (each `None`: absent), as JSON.
fn uid_pod(annotations: Value, pod_sc: Option<Value>, app_sc: Option<Value>) -> String {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {
            "secret-zero.dev/inject": "true",
            "secret-zero.dev/secret": "app-secrets",
            "secret-zero.dev/role": "shop-app",
            "secret-zero.dev/vault-addr": "https://vault.vault.svc:8200",
        }},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    });
    for (k, v) in annotations.as_object().unwrap() {
        pod["metadata"]["annotations"][k] = v.clone();
    }
    if let Some(sc) = pod_sc {
        pod["spec"]["securityContext"] = sc;
    }
    if let Some(sc) = app_sc {
        pod["spec"]["containers"][0]["securityContext"] = sc;
    }
    pod.to_string()
}

/// Inject `input` with `args` (and `env`), expecting success: the agent container and
/// what was logged.
fn inject_agent(input: &str, args: &[&str], env: &[(&str, &str)]) -> (Value, String) {
    let out = Cmd::secret_zero()
        .arg("inject")
        .args(["-o", "json"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(input)
        .run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pod = out.json();
    (agent_of(&pod["spec"]).clone(), out.stderr)
}

/// The agent's security context is restricted whatever its uid.
fn assert_restricted(agent: &Value) {
    let sc = &agent["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(sc["privileged"], false, "{sc}");
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}), "{sc}");
    assert_eq!(
        sc["seccompProfile"],
        json!({"type": "RuntimeDefault"}),
        "{sc}"
    );
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert!(sc.get("runAsGroup").is_none(), "{sc}");
}

fn allow_uids(agent: &Value) -> Vec<String> {
    args_of(agent)
        .into_iter()
        .filter(|a| a.starts_with("--allow-uid") || a.starts_with("--socket-mode"))
        .collect()
}

/// OpenShift's restricted-v2: nobody sets runAsUser, the platform assigns one uid to
/// every container of the pod. The agent sets none either, so it runs as that uid and
/// its own-uid rule admits the app: no --allow-uid, no 0666 socket, no warning.
#[test]
fn with_no_run_as_user_anywhere_the_agent_sets_none_and_admits_its_own_uid() {
    let (agent, log) = inject_agent(&uid_pod(json!({}), None, None), &[], &[]);
    assert_restricted(&agent);
    assert!(
        agent["securityContext"].get("runAsUser").is_none(),
        "{agent}"
    );
    assert!(allow_uids(&agent).is_empty(), "{agent}");
    assert!(!log.contains("WARN"), "{log}");
    // A pod-level securityContext without runAsUser is the same.
    let (agent, log) = inject_agent(
        &uid_pod(
            json!({}),
            Some(json!({"runAsNonRoot": true, "fsGroup": 2000})),
            Some(json!({"readOnlyRootFilesystem": true})),
        ),
        &[],
        &[],
    );
    assert!(agent["securityContext"].get("runAsUser").is_none());
    assert!(allow_uids(&agent).is_empty(), "{agent}");
    assert!(!log.contains("WARN"), "{log}");
}

/// runAsUser on the pod: the agent inherits it, the same uid as the app.
#[test]
fn a_pod_level_run_as_user_is_inherited_by_the_agent() {
    let (agent, log) = inject_agent(
        &uid_pod(json!({}), Some(json!({"runAsUser": 1000})), None),
        &[],
        &[],
    );
    assert_restricted(&agent);
    assert!(agent["securityContext"].get("runAsUser").is_none());
    assert!(allow_uids(&agent).is_empty(), "{agent}");
    assert!(!log.contains("WARN"), "{log}");
}

/// runAsUser on the app container only: that uid is admitted, the socket opened to it.
#[test]
fn a_container_level_run_as_user_is_admitted() {
    for pod_sc in [None, Some(json!({"runAsUser": 1000}))] {
        let (agent, _) = inject_agent(
            &uid_pod(json!({}), pod_sc.clone(), Some(json!({"runAsUser": 2000}))),
            &[],
            &[],
        );
        assert_restricted(&agent);
        assert!(agent["securityContext"].get("runAsUser").is_none());
        assert_eq!(
            allow_uids(&agent),
            ["--allow-uid=2000", "--socket-mode=0666"],
            "pod securityContext {pod_sc:?}"
        );
    }
}

/// The annotation pins the agent's uid; the readers' uids are still admitted, and one
/// equal to the pin needs no flag.
#[test]
fn the_agent_uid_annotation_pins_the_agent() {
    let pin = json!({"secret-zero.dev/agent-uid": "4242"});
    let (agent, _) = inject_agent(
        &uid_pod(pin.clone(), None, Some(json!({"runAsUser": 2000}))),
        &[],
        &[],
    );
    assert_restricted(&agent);
    assert_eq!(agent["securityContext"]["runAsUser"], 4242);
    assert_eq!(
        allow_uids(&agent),
        ["--allow-uid=2000", "--socket-mode=0666"]
    );

    let (agent, _) = inject_agent(
        &uid_pod(pin.clone(), Some(json!({"runAsUser": 4242})), None),
        &[],
        &[],
    );
    assert_eq!(agent["securityContext"]["runAsUser"], 4242);
    assert!(allow_uids(&agent).is_empty(), "{agent}");

    // Pinned, and an app whose uid nobody set: the warning still applies there.
    let (agent, log) = inject_agent(&uid_pod(pin, None, None), &[], &[]);
    assert_eq!(agent["securityContext"]["runAsUser"], 4242);
    assert!(allow_uids(&agent).is_empty(), "{agent}");
    assert!(
        log.contains("container app sets no runAsUser and the agent is pinned to uid 4242"),
        "{log}"
    );
}

/// `--agent-uid` (or SECRET_ZERO_AGENT_UID) is the default for pods without the
/// annotation; the annotation wins.
#[test]
fn the_agent_uid_flag_is_the_default_and_the_annotation_wins() {
    let plain = uid_pod(json!({}), Some(json!({"runAsUser": 1000})), None);
    let (agent, _) = inject_agent(&plain, &["--agent-uid", "7000"], &[]);
    assert_restricted(&agent);
    assert_eq!(agent["securityContext"]["runAsUser"], 7000);
    assert_eq!(
        allow_uids(&agent),
        ["--allow-uid=1000", "--socket-mode=0666"]
    );
    let (agent, _) = inject_agent(&plain, &[], &[("SECRET_ZERO_AGENT_UID", "7001")]);
    assert_eq!(agent["securityContext"]["runAsUser"], 7001);

    let annotated = uid_pod(
        json!({"secret-zero.dev/agent-uid": "1000"}),
        Some(json!({"runAsUser": 1000})),
        None,
    );
    let (agent, _) = inject_agent(&annotated, &["--agent-uid", "7000"], &[]);
    assert_eq!(agent["securityContext"]["runAsUser"], 1000);
    assert!(allow_uids(&agent).is_empty(), "{agent}");
}

/// A pod running as root at pod level: the agent (runAsNonRoot) must not inherit 0, so
/// it keeps the image's uid and admits the app's root.
#[test]
fn a_pod_level_root_is_not_inherited() {
    let (agent, _) = inject_agent(
        &uid_pod(json!({}), Some(json!({"runAsUser": 0})), None),
        &[],
        &[],
    );
    assert_restricted(&agent);
    assert_eq!(agent["securityContext"]["runAsUser"], 65532);
    assert_eq!(allow_uids(&agent), ["--allow-uid=0", "--socket-mode=0666"]);
}

#[test]
fn an_invalid_agent_uid_annotation_is_refused() {
    for (value, why) in [
        ("nobody", "\"nobody\" is not a number"),
        ("0", "\"0\" is root, and the agent runs as non-root"),
        ("-1000", "\"-1000\" is negative"),
        ("2147483648", "\"2147483648\" is too large"),
        ("", "\"\" is not a number"),
    ] {
        let input = uid_pod(json!({"secret-zero.dev/agent-uid": value}), None, None);
        // An empty value is no pin at all, as for every other optional annotation.
        let out = run_inject(&["-"], Some(&input));
        if value.is_empty() {
            assert_eq!(out.code, 0, "{}", out.stderr);
            continue;
        }
        assert_eq!(out.code, 3, "{value}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert_one_line(&out.stderr);
        let stderr = &out.stderr;
        assert!(
            stderr.starts_with(
                "secret-zero: error: inject: document 1 (Pod shop/web): annotation secret-zero.dev/agent-uid: "
            ),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{value}: {stderr}");
        assert!(
            stderr.contains("a uid is a whole number from 1 to 2147483647"),
            "{stderr}"
        );
        assert!(stderr.contains("(hint: "), "{stderr}");
    }
}

/// A bad --agent-uid is a usage error, as for every flag value clap checks.
#[test]
fn an_invalid_agent_uid_flag_is_a_usage_error() {
    let input = uid_pod(json!({}), None, None);
    for value in ["root", "0", "-1", "4294967296"] {
        let out = Cmd::secret_zero()
            .arg("inject")
            .arg(format!("--agent-uid={value}"))
            .stdin(input.as_str())
            .run();
        assert_eq!(out.code, 2, "{value}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.contains("invalid value")
                && out
                    .stderr
                    .contains("a uid is a whole number from 1 to 2147483647"),
            "{}",
            out.stderr
        );
    }
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
    // The socket, the Vault token and the API token: nothing added twice.
    assert_eq!(docs[0]["spec"]["volumes"].as_array().unwrap().len(), 3);
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
    assert_eq!(role["data"]["token_num_uses"], 1);
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

// ---------------------------------------------------------------- the agent's uid at admission

/// `secret-zero webhook ARGS` (the binary) on a free port with a certificate of a fresh
/// CA; reviews are posted with curl, which trusts that CA only.
struct WebhookBinary {
    process: secret_zero_testbed::cmd::Process,
    addr: String,
    dir: tempfile::TempDir,
}

impl WebhookBinary {
    fn start(args: &[&str], env: &[(&str, &str)]) -> WebhookBinary {
        use std::io::{BufRead, BufReader};
        let ca = secret_zero_testbed::certs::TestCa::new("inject test CA");
        let cert = ca.server_cert(&["127.0.0.1"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tls.crt"), &cert.chain_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), &cert.key_pem).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let mut process = Cmd::secret_zero()
            .args(["webhook", "--listen", "127.0.0.1:0"])
            // Not the default 0.0.0.0:9090: tests run side by side.
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(secret_zero_testbed::cmd::Sink::Null)
            .spawn();
        let mut lines = BufReader::new(process.child().stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the webhook logs its address").unwrap();
            if let Some(rest) = line.split("listening on https://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        WebhookBinary { process, addr, dir }
    }

    /// The AdmissionReview of tests/webhook/pod-create.json with this pod in it, posted;
    /// returns the review's response.
    fn review(&self, pod: &Value) -> Value {
        let fixture = repo_path("tests/webhook/pod-create.json");
        let mut review: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        review["request"]["object"] = pod.clone();
        let body = self.dir.path().join("review.json");
        std::fs::write(&body, review.to_string()).unwrap();
        let curl = secret_zero_testbed::tools::require("curl", "apt-get install -y curl");
        let out = Cmd::new(curl)
            .args(["-sS", "--fail", "--max-time", "20", "--cacert"])
            .arg(self.dir.path().join("ca.pem"))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", body.display()))
            .arg(format!("https://{}/mutate", self.addr))
            .run();
        assert!(out.success(), "curl: {}", out.stderr);
        let answer = out.json();
        assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
        answer["response"].clone()
    }

    /// The pod as the API server would store it after the response's patch.
    fn admitted(&self, pod: &Value) -> Value {
        use base64::Engine;
        let response = self.review(pod);
        assert_eq!(response["allowed"], true, "{response}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(response["patch"].as_str().expect("a patch"))
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        let mut object = pod.clone();
        json_patch::patch(&mut object, &patch).unwrap();
        object
    }
}

impl Drop for WebhookBinary {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// The same uid rules at admission, `--agent-uid` as the webhook's cluster-wide default
/// (flag or SECRET_ZERO_AGENT_UID), and an invalid annotation denied with one line.
#[test]
fn the_webhook_applies_the_same_uid_rules_and_denies_an_invalid_agent_uid() {
    let pod = |annotations: Value, app_sc: Option<Value>| -> Value {
        serde_json::from_str(&uid_pod(annotations, None, app_sc)).unwrap()
    };
    let webhook = WebhookBinary::start(&[], &[]);

    // Nobody sets a uid: neither does the agent, and it needs no --allow-uid.
    let admitted = webhook.admitted(&pod(json!({}), None));
    let agent = agent_of(&admitted["spec"]);
    assert_restricted(agent);
    assert!(
        agent["securityContext"].get("runAsUser").is_none(),
        "{agent}"
    );
    assert!(allow_uids(agent).is_empty(), "{agent}");
    assert!(
        webhook
            .review(&pod(json!({}), None))
            .get("warnings")
            .is_none()
    );

    // The app's own uid is admitted.
    let admitted = webhook.admitted(&pod(json!({}), Some(json!({"runAsUser": 2000}))));
    assert_eq!(
        allow_uids(agent_of(&admitted["spec"])),
        ["--allow-uid=2000", "--socket-mode=0666"]
    );

    // The annotation pins it.
    let admitted = webhook.admitted(&pod(json!({"secret-zero.dev/agent-uid": "4242"}), None));
    assert_eq!(
        agent_of(&admitted["spec"])["securityContext"]["runAsUser"],
        4242
    );

    // An invalid annotation: denied, with the line kubectl prints.
    for (value, why) in [
        ("0", "\"0\" is root"),
        ("abc", "\"abc\" is not a number"),
        ("-7", "\"-7\" is negative"),
        ("2147483648", "\"2147483648\" is too large"),
    ] {
        let response = webhook.review(&pod(json!({"secret-zero.dev/agent-uid": value}), None));
        assert_eq!(response["allowed"], false, "{response}");
        assert!(response.get("patch").is_none(), "{response}");
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "secret-zero: this pod (Pod shop/web): annotation secret-zero.dev/agent-uid: "
            ),
            "{message}"
        );
        assert!(message.contains(why), "{message}");
        assert!(message.contains("(hint: "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    drop(webhook);

    // The cluster-wide default, by flag and by environment; the annotation still wins.
    for webhook in [
        WebhookBinary::start(&["--agent-uid", "1000680000"], &[]),
        WebhookBinary::start(&[], &[("SECRET_ZERO_AGENT_UID", "1000680000")]),
    ] {
        let admitted = webhook.admitted(&pod(json!({}), Some(json!({"runAsUser": 1000680000}))));
        let agent = agent_of(&admitted["spec"]);
        assert_restricted(agent);
        assert_eq!(agent["securityContext"]["runAsUser"], 1000680000);
        assert!(allow_uids(agent).is_empty(), "{agent}");
        let admitted = webhook.admitted(&pod(json!({"secret-zero.dev/agent-uid": "5"}), None));
        assert_eq!(
            agent_of(&admitted["spec"])["securityContext"]["runAsUser"],
            5
        );
    }

    // A bad default is a usage error at start-up.
    let out = Cmd::secret_zero()
        .args([
            "webhook",
            "--agent-uid",
            "0",
            "--tls-cert",
            "x",
            "--tls-key",
            "y",
        ])
        .run();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is root"), "{}", out.stderr);
}
