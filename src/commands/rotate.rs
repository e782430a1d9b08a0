//! `rotate`: wire the flags to a Vault session, a Kubernetes client and the rotation
//! engine in [`crate::rotate`]; print its one-line JSON report on stdout.

use crate::cli::RotateArgs;
use crate::error::Error;
use crate::failure::Hinted;
use crate::kube::{Secrets, connect};
use crate::retry::Backoff;
use crate::rotate::{Outcome, Plan, Rotator, Scope};
use crate::secret_format::SecretRef;
use crate::vault::Session;

pub async fn run(args: RotateArgs) -> Result<i32, Error> {
    let backoff = Backoff::with_timeout(args.retry_timeout);
    let mut plan = Plan {
        mount: args.transit_mount.clone(),
        key: args.transit_key.clone(),
        scope: Scope::NamedOnly,
        selector: args.selector.clone(),
        named: Vec::new(),
        rotate: !args.no_rotate,
        retire: args.retire,
        trim: args.trim,
        dry_run: args.dry_run,
        batch_size: args.batch_size as usize,
        page_size: args.page_size,
        backoff,
    };
    match start(&args, &mut plan).await {
        Ok((rotator, session)) => {
            let Outcome { report, result } = rotator.run().await;
            println!("{}", report.to_line());
            session.close().await;
            Ok(result?)
        }
        Err(e) => {
            // Even a run that could not start leaves its line for the CronJob's log.
            let mut report = Rotator::report(&plan);
            report.error = Some(e.one_line());
            println!("{}", report.to_line());
            Err(e)
        }
    }
}

async fn start(args: &RotateArgs, plan: &mut Plan) -> Result<(Rotator, Session), Error> {
    if args.trim && !args.retire {
        return Err(Error::usage(
            "--trim goes with --retire",
            "trim deletes the versions a successful --retire retired: add --retire, or drop --trim",
        ));
    }
    if args.transit_key.trim().is_empty() {
        return Err(Error::usage(
            "--transit-key is empty",
            "name the Transit key whose ciphertexts to rewrap",
        ));
    }
    plan.named = args
        .secrets
        .iter()
        .map(|s| SecretRef::parse(s))
        .collect::<Result<_, _>>()
        .map_err(Error::Usage)?;

    let (client, default_namespace) = connect(&args.operator.cluster()).await?;
    plan.scope = if args.all_namespaces {
        Scope::AllNamespaces
    } else if let Some(ns) = &args.namespace {
        Scope::Namespace(ns.clone())
    } else if !plan.named.is_empty() && args.selector.is_none() {
        // --secret alone: only the named Secrets (a selector also asks for labelled ones).
        Scope::NamedOnly
    } else {
        Scope::Namespace(default_namespace)
    };

    // Many requests to one server: keep connections. No plaintext ever passes here.
    let session = super::operator::session(
        &args.operator.vault,
        &args.operator.auth,
        true,
        plan.backoff,
    )
    .await?;
    let rotator = Rotator::new(
        session.vault().clone(),
        session.token().clone(),
        Secrets::new(client),
        plan.clone(),
    );
    Ok((rotator, session))
}
