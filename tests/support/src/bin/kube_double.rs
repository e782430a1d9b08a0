//! `kube-double`: the Kubernetes API double as a standalone process, for peers that
//! cannot link it in (kubectl scripts, OpenBao, benchmarks).
//!
//! ```text
//! kube-double --kubeconfig PATH
//!             [--listen 127.0.0.1:0]
//!             [--ca-file PATH]                 (default: PATH-of-kubeconfig.ca.pem)
//!             [--service-account NS/NAME]...
//!             [--grant NS/SA=VERBS:RESOURCES[:NAMES]]...          (a RoleBinding in NS)
//!             [--cluster-grant NS/SA=VERBS:RESOURCES[:NAMES]]...  (a ClusterRoleBinding)
//! ```
//!
//! VERBS, RESOURCES and NAMES are comma-separated, e.g.
//! `--grant shop/app=get,list:secrets:app-secrets` or
//! `--cluster-grant vault/reviewer=create:tokenreviews`. Grants do not create the
//! ServiceAccount; list it with `--service-account` too.
//!
//! Once listening it writes the kubeconfig (admin token) and the CA file, then prints
//! one line of JSON on stdout:
//! `{"url", "issuer", "ca_file", "kubeconfig", "admin_token", "service_accounts":
//! {"NS/NAME": "uid"}, "signing_public_key_pem"}` (the last for OpenBao jwt auth's
//! `jwt_validation_pubkeys`; the JWKS is at `URL/openid/v1/jwks`).
//!
//! It serves until SIGTERM or SIGINT, or until stdin reaches end of file when stdin is
//! a pipe (so a parent that dies takes the double with it; a terminal or `/dev/null`
//! on stdin is ignored).
//!
//! At run time, `kubectl create serviceaccount`/`create token`/`delete serviceaccount`
//! work against it, and the admin-only test-bed API adds what Kubernetes has no simple
//! request for: `POST /kube-double/v1/serviceaccounts` `{"namespace","name"}`,
//! `POST /kube-double/v1/grants`
//! `{"namespace","serviceAccount","rule":{"verbs","resources","resourceNames","clusterWide"}}`,
//! `POST /kube-double/v1/tokens`
//! `{"namespace","serviceAccount","audiences","expirationSeconds"}` (no 10-minute
//! floor) and `GET /kube-double/v1/requests` (count and log of API requests).

use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::process::ExitCode;

use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{SignalKind, signal};

struct Options {
    kubeconfig: PathBuf,
    listen: SocketAddr,
    ca_file: Option<PathBuf>,
    service_accounts: Vec<(String, String)>,
    /// (namespace, service account, rule)
    grants: Vec<(String, String, Rule)>,
}

const USAGE: &str = "usage: kube-double --kubeconfig PATH [--listen ADDR] [--ca-file PATH] \
[--service-account NS/NAME]... [--grant NS/SA=VERBS:RESOURCES[:NAMES]]... \
[--cluster-grant NS/SA=VERBS:RESOURCES[:NAMES]]...";

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("kube-double: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let double = match KubeDouble::start_on(options.listen) {
        Ok(double) => double,
        Err(e) => {
            eprintln!("kube-double: cannot listen on {}: {e}", options.listen);
            return ExitCode::from(1);
        }
    };
    let mut accounts = Map::new();
    for (ns, name) in &options.service_accounts {
        let uid = double.create_service_account(ns, name);
        accounts.insert(format!("{ns}/{name}"), json!(uid));
    }
    for (ns, sa, rule) in &options.grants {
        double.grant(ns, sa, rule.clone());
    }
    let ca_file = options.ca_file.clone().unwrap_or_else(|| {
        let mut name = options.kubeconfig.clone().into_os_string();
        name.push(".ca.pem");
        PathBuf::from(name)
    });
    double.write_kubeconfig(&options.kubeconfig, &double.admin_token());
    double.write_ca(&ca_file);

    let ready = json!({
        "url": double.url(),
        "issuer": double.issuer(),
        "ca_file": ca_file,
        "kubeconfig": options.kubeconfig,
        "admin_token": double.admin_token(),
        "service_accounts": Value::Object(accounts),
        "signing_public_key_pem": double.signing_public_key_pem(),
    });
    println!("{ready}");

    wait_for_the_end();
    drop(double);
    ExitCode::SUCCESS
}

/// Blocks until SIGTERM, SIGINT, or end of a piped stdin.
fn wait_for_the_end() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let stdin_closed = async {
            if !stdin_is_pipe() {
                return std::future::pending().await;
            }
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = stdin_closed => {}
        }
    });
    // tokio's stdin reads on a blocking thread that no signal interrupts; a plain drop
    // of the runtime would wait for it forever.
    runtime.shutdown_background();
}

fn stdin_is_pipe() -> bool {
    std::fs::metadata("/proc/self/fd/0")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut kubeconfig = None;
    let mut options = Options {
        kubeconfig: PathBuf::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ca_file: None,
        service_accounts: Vec::new(),
        grants: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        if flag == "--help" || flag == "-h" {
            return Err("help requested".into());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--kubeconfig" => kubeconfig = Some(PathBuf::from(value)),
            "--listen" => {
                options.listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value:?}: {e}"))?
            }
            "--ca-file" => options.ca_file = Some(PathBuf::from(value)),
            "--service-account" => options.service_accounts.push(namespaced(&value)?),
            "--grant" | "--cluster-grant" => {
                let (who, rule) = value.split_once('=').ok_or_else(|| {
                    format!("{flag} {value:?}: expected NS/SA=VERBS:RESOURCES[:NAMES]")
                })?;
                let (ns, sa) = namespaced(who)?;
                let mut rule = Rule::parse(rule)?;
                rule.cluster_wide = flag == "--cluster-grant";
                options.grants.push((ns, sa, rule));
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    options.kubeconfig = kubeconfig.ok_or("--kubeconfig is required")?;
    Ok(options)
}

fn namespaced(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok((ns.into(), name.into())),
        _ => Err(format!("{text:?}: expected NAMESPACE/NAME")),
    }
}
