//! `secret-zero audit` as a process against the Kubernetes API double: pods injected by
//! `secret-zero inject` itself are fine, annotated pods without the agent and injected
//! pods on another agent image are named (text and JSON) with exit 16, a paged list
//! across namespaces, and the 403 of an identity without `list pods`.

use std::path::Path;

use secret_zero_testbed::cmd::{Cmd, Run};
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use serde_json::{Value, json};

const IMAGE: &str = "registry.example/secret-zero:2.0.0";
const OLD_IMAGE: &str = "registry.example/secret-zero:1.9.0";
const STRAYS: i32 = 16;
const KUBE_DENIED: i32 = 7;
const KUBE_UNAVAILABLE: i32 = 9;

/// A pod opted in to injection, with the annotations inject requires.
fn annotated(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {
                "secret-zero.dev/inject": "true",
                "secret-zero.dev/secret": "app-secrets",
                "secret-zero.dev/role": "app",
                "secret-zero.dev/vault-addr": "https://vault.vault:8200",
            },
        },
        "spec": {
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "app", "image": "shop/app:1.0"}],
        },
    })
}

/// A pod nobody asked to inject.
fn plain(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": "shop/app:1.0"}]},
    })
}

/// What `secret-zero inject --image IMAGE` makes of `pod`: the pod the webhook admits.
fn inject(pod: &Value, image: &str) -> Value {
    inject_with(pod, &["--image", image])
}

fn inject_with(pod: &Value, flags: &[&str]) -> Value {
    let run = Cmd::secret_zero()
        .args(["inject", "-o", "json"])
        .args(flags)
        .stdin(serde_json::to_vec(pod).unwrap())
        .run()
        .ok();
    let injected = run.json();
    assert_eq!(
        injected["metadata"]["annotations"]["secret-zero.dev/status"], "injected",
        "{injected}"
    );
    injected
}

/// As the kubelet would report it once running.
fn running(mut pod: Value) -> Value {
    pod["status"] = json!({"phase": "Running"});
    pod
}

fn audit(kubeconfig: &Path, args: &[&str]) -> Run {
    Cmd::secret_zero()
        .arg("audit")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .run()
}

fn names(report: &Value, problem: &str) -> Vec<String> {
    report["strays"]
        .as_array()
        .unwrap_or_else(|| panic!("no strays in {report}"))
        .iter()
        .filter(|s| s["problem"] == problem)
        .map(|s| {
            format!(
                "{}/{}",
                s["namespace"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every request the double saw is a read.
fn assert_read_only(double: &KubeDouble) {
    let writes: Vec<String> = double
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "audit wrote: {writes:?}");
}

#[test]
fn a_clean_namespace_exits_0_and_counts_the_fine_pods() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = double.admin_kubeconfig(dir.path());
    double.put_pod(running(inject(&annotated("shop", "web"), IMAGE)));
    // The legacy sidecar (clusters before 1.29) counts too.
    let legacy = inject_with(
        &annotated("shop", "batch"),
        &["--legacy-sidecar", "--image", IMAGE],
    );
    assert_eq!(
        legacy["spec"]["containers"][1]["name"], "secret-zero",
        "{legacy}"
    );
    double.put_pod(running(legacy));
    // A pod pinned to its own image by annotation runs what it asked for.
    let mut pinned = annotated("shop", "pinned");
    pinned["metadata"]["annotations"]["secret-zero.dev/image"] = json!(OLD_IMAGE);
    double.put_pod(running(inject(&pinned, IMAGE)));
    double.put_pod(running(plain("shop", "db")));
    let mut off = annotated("shop", "off");
    off["metadata"]["annotations"]["secret-zero.dev/inject"] = json!("false");
    double.put_pod(running(off));
    // A stray elsewhere is not this namespace's business.
    double.put_pod(annotated("bank", "missed"));

    let run = audit(&admin, &["-n", "shop", "--image", IMAGE]);
    run.expect(0);
    assert_eq!(
        run.stdout,
        format!(
            "no stray pods: 3 injected pods fine, 5 pods scanned in namespace shop (expected agent image {IMAGE})\n"
        )
    );

    let run = audit(&admin, &["-n", "shop", "--image", IMAGE, "-o", "json"]);
    run.expect(0);
    let report = run.json();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["fine"], 3, "{report}");
    assert_eq!(report["pods_scanned"], 5, "{report}");
    assert_eq!(report["no_agent"], 0, "{report}");
    assert_eq!(report["image_mismatch"], 0, "{report}");
    assert_eq!(report["strays"], json!([]), "{report}");
    assert_eq!(report["namespace"], "shop", "{report}");
    assert_eq!(report["all_namespaces"], false, "{report}");
    assert_eq!(report["expected_image"], IMAGE, "{report}");
    assert_eq!(report["error"], Value::Null, "{report}");
    // The image also comes from the environment.
    let run = Cmd::secret_zero()
        .args(["audit", "-n", "shop", "-o", "json"])
        .env("SECRET_ZERO_KUBECONFIG", &admin)
        .env("SECRET_ZERO_AUDIT_IMAGE", IMAGE)
        .run();
    run.expect(0);
    assert_read_only(&double);
}

#[test]
fn stray_pods_are_named_in_text_and_json_with_exit_16() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = double.admin_kubeconfig(dir.path());
    double.put_pod(running(inject(&annotated("shop", "web"), IMAGE)));
    // Created while the webhook was down: the annotation, no agent.
    double.put_pod(running(annotated("shop", "missed")));
    // Injected before the upgrade: the old agent image.
    double.put_pod(running(inject(&annotated("shop", "old"), OLD_IMAGE)));
    double.put_pod(running(plain("shop", "db")));
    double.put_pod(annotated("bank", "also-missed"));
    double.put_pod(running(inject(&annotated("bank", "teller"), IMAGE)));
    double.put_pod(running(plain("default", "tool")));

    let run = audit(&admin, &["--namespace", "shop", "--image", IMAGE]);
    run.expect(STRAYS);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[0].starts_with("NAMESPACE"), "{}", run.stdout);
    let missed = lines
        .iter()
        .find(|l| l.contains(" missed "))
        .expect("missed listed");
    assert!(
        missed.contains("no-agent") && missed.contains("Running"),
        "{missed}"
    );
    assert!(missed.contains("created without the agent"), "{missed}");
    let old = lines
        .iter()
        .find(|l| l.contains(" old "))
        .expect("old listed");
    assert!(old.contains("image-mismatch"), "{old}");
    assert!(
        old.contains(&format!("agent image {OLD_IMAGE}, expected {IMAGE}")),
        "{old}"
    );
    assert_eq!(
        lines[3],
        format!(
            "2 stray pods: 1 without the agent, 1 on another agent image; 1 injected pod fine, 4 pods scanned in namespace shop (expected agent image {IMAGE})"
        )
    );

    let run = audit(&admin, &["-n", "shop", "--image", IMAGE, "-o", "json"]);
    run.expect(STRAYS);
    let report = run.json();
    assert_eq!(report["clean"], false, "{report}");
    assert_eq!(names(&report, "no-agent"), ["shop/missed"], "{report}");
    assert_eq!(names(&report, "image-mismatch"), ["shop/old"], "{report}");
    let old = report["strays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "old")
        .unwrap();
    assert_eq!(old["image"], OLD_IMAGE, "{report}");
    assert_eq!(old["expected_image"], IMAGE, "{report}");
    assert_eq!(old["phase"], "Running", "{report}");
    assert_eq!(
        (
            &report["fine"],
            &report["no_agent"],
            &report["image_mismatch"]
        ),
        (&json!(1), &json!(1), &json!(1)),
        "{report}"
    );

    // Every namespace, two pods a page: seven pods are four list requests, each a
    // GET on /api/v1/pods.
    let before = double.requests().len();
    let run = audit(
        &admin,
        &["-A", "--image", IMAGE, "-o", "json", "--page-size", "2"],
    );
    run.expect(STRAYS);
    let report = run.json();
    assert_eq!(
        names(&report, "no-agent"),
        ["bank/also-missed", "shop/missed"],
        "{report}"
    );
    assert_eq!(names(&report, "image-mismatch"), ["shop/old"], "{report}");
    assert_eq!(report["pods_scanned"], 7, "{report}");
    assert_eq!(report["fine"], 2, "{report}");
    assert_eq!(report["all_namespaces"], true, "{report}");
    assert_eq!(report["namespace"], Value::Null, "{report}");
    assert_eq!(report["kube_requests"], 4, "{report}");
    let lists: Vec<String> = double.requests()[before..]
        .iter()
        .filter(|r| r.as_str() == "GET /api/v1/pods")
        .cloned()
        .collect();
    assert_eq!(lists.len(), 4, "{:?}", double.requests());

    // No --namespace: the kubeconfig context's (default), where nothing is annotated.
    let run = audit(&admin, &["--image", IMAGE, "-o", "json"]);
    run.expect(0);
    assert_eq!(run.json()["namespace"], "default");
    assert_eq!(run.json()["pods_scanned"], 1);
    assert_read_only(&double);
}

#[test]
fn without_list_permission_audit_says_which_grant_is_missing() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    double.put_pod(running(annotated("shop", "missed")));
    double.create_service_account("ops", "auditor");
    // What it may do does not include listing pods.
    double.grant(
        "ops",
        "auditor",
        Rule::new(&["get"], &["pods"]).cluster_wide(),
    );
    let kubeconfig = double.sa_kubeconfig(dir.path(), "ops", "auditor");

    let run = audit(&kubeconfig, &["-n", "shop"]);
    run.expect(KUBE_DENIED);
    assert_eq!(run.stdout, "", "a failed text run prints no table");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    let line = lines[0];
    assert!(line.starts_with("secret-zero: error: audit: "), "{line}");
    assert!(
        line.contains(r#"User "system:serviceaccount:ops:auditor" cannot list resource "pods" in API group "" in the namespace "shop""#),
        "{line}"
    );
    assert!(
        line.contains("(hint: audit needs the verb list on the resource pods in namespace shop: grant it with a Role and RoleBinding there"),
        "{line}"
    );

    let run = audit(&kubeconfig, &["-A", "-o", "json"]);
    run.expect(KUBE_DENIED);
    let report = run.json();
    let error = report["error"]
        .as_str()
        .expect("an error in the JSON report");
    assert!(
        error.contains(r#"cannot list resource "pods" in API group "" at the cluster scope"#),
        "{error}"
    );
    assert!(
        error.contains("ClusterRole bound by a ClusterRoleBinding"),
        "{error}"
    );
    assert_eq!(report["clean"], false, "{report}");
    assert_eq!(report["all_namespaces"], true, "{report}");
    assert!(run.stderr.contains("ClusterRoleBinding"), "{}", run.stderr);

    // A Role in shop is enough for shop, not for every namespace.
    double.create_service_account("shop", "auditor");
    double.grant("shop", "auditor", Rule::new(&["list"], &["pods"]));
    let kubeconfig = double.sa_kubeconfig(dir.path(), "shop", "auditor");
    let run = audit(&kubeconfig, &["-n", "shop", "-o", "json"]);
    run.expect(STRAYS);
    assert_eq!(names(&run.json(), "no-agent"), ["shop/missed"]);
    audit(&kubeconfig, &["-A"]).expect(KUBE_DENIED);
    assert_read_only(&double);
}

#[test]
fn an_unreachable_api_is_exit_9_after_the_retry_budget() {
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = double.admin_kubeconfig(dir.path());
    // Nothing listens there any more.
    drop(double);
    let run = audit(
        &kubeconfig,
        &["-n", "shop", "-o", "json", "--retry-timeout", "1s"],
    );
    run.expect(KUBE_UNAVAILABLE);
    let report = run.json();
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("listing pods in namespace shop")),
        "{report}"
    );
}

#[test]
fn in_a_pod_it_audits_its_own_namespace() {
    // As a CronJob would run it: the ServiceAccount files kubelet mounts, no kubeconfig.
    let double = KubeDouble::start();
    let dir = tempfile::tempdir().unwrap();
    double.put_pod(running(annotated("shop", "missed")));
    double.put_pod(running(annotated("bank", "elsewhere")));
    double.create_service_account("shop", "auditor");
    double.grant("shop", "auditor", Rule::new(&["list"], &["pods"]));
    let sa = dir.path().join("serviceaccount");
    std::fs::create_dir(&sa).unwrap();
    let token = double.issue_token("shop", "auditor", &[&double.issuer()], 3600);
    std::fs::write(sa.join("token"), token).unwrap();
    double.write_ca(&sa.join("ca.crt"));
    std::fs::write(sa.join("namespace"), "shop").unwrap();
    let port = double.url().rsplit(':').next().unwrap().to_string();

    let run = Cmd::secret_zero()
        .args(["audit", "-o", "json", "--serviceaccount-dir"])
        .arg(&sa)
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", &port)
        .env("SECRET_ZERO_AUDIT_IMAGE", IMAGE)
        .run();
    run.expect(STRAYS);
    let report = run.json();
    assert_eq!(report["namespace"], "shop", "{report}");
    assert_eq!(names(&report, "no-agent"), ["shop/missed"], "{report}");
    assert_read_only(&double);
}
