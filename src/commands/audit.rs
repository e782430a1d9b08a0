//! `audit`: wire the flags to a Kubernetes client and the read-only check in
//! [`crate::audit`]; print its report on stdout (a table, or JSON with `-o json`).

use crate::audit::{self, AuditError, Outcome, Plan, Scope};
use crate::cli::{AuditArgs, AuditOutput};
use crate::error::Error;
use crate::exit;
use crate::failure::Hinted;
use crate::kube::{Pods, connect};
use crate::retry::Backoff;

pub async fn run(args: AuditArgs) -> Result<i32, Error> {
    let mut plan = Plan {
        // Without either flag the kubeconfig's namespace, known once connected.
        scope: match (&args.namespace, args.all_namespaces) {
            (_, true) => Scope::AllNamespaces,
            (Some(ns), false) => Scope::Namespace(ns.clone()),
            (None, false) => Scope::Namespace(String::new()),
        },
        expected_image: args.image.clone(),
        page_size: args.page_size,
        backoff: Backoff::with_timeout(args.retry_timeout),
    };
    let outcome = match start(&args, &mut plan).await {
        Ok(pods) => audit::run(&pods, &plan).await,
        Err(e) => {
            let mut report = audit::empty_report(&plan);
            report.error = Some(e.one_line());
            Outcome {
                report,
                result: Err(e),
            }
        }
    };
    let Outcome { report, result } = outcome;
    match args.output {
        AuditOutput::Json => println!("{}", report.to_json()),
        // On failure the error line on stderr says it all; a partial table would mislead.
        AuditOutput::Text if result.is_ok() => print!("{}", report.to_text()),
        AuditOutput::Text => {}
    }
    result?;
    Ok(if report.clean {
        exit::OK
    } else {
        exit::AUDIT_STRAYS
    })
}

async fn start(args: &AuditArgs, plan: &mut Plan) -> Result<Pods, AuditError> {
    if args.image.trim().is_empty() {
        return Err(crate::fault::Fault::input(
            "audit: --image is empty",
            "name the agent image injected pods should run",
        )
        .into());
    }
    if args
        .namespace
        .as_deref()
        .is_some_and(|ns| ns.trim().is_empty())
    {
        return Err(crate::fault::Fault::input(
            "audit: --namespace is empty",
            "name a namespace, or give --all-namespaces",
        )
        .into());
    }
    let (client, default_namespace) = connect(&args.cluster())
        .await
        .map_err(crate::fault::Fault::from)?;
    if !args.all_namespaces && args.namespace.is_none() {
        plan.scope = Scope::Namespace(default_namespace);
    }
    Ok(Pods::new(client))
}
