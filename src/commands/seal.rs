//! `seal`: read the document, seal it with Transit, then print the Secret
//! manifest or apply it to the cluster, verifying the round trip.

use std::io::Write;

use crate::cli::SealArgs;
use crate::document;
use crate::error::Error;
use crate::kube;
use crate::retry::Backoff;
use crate::seal::{self, Cluster, Request, Sealer};

pub async fn run(args: SealArgs) -> Result<(), Error> {
    if args.adopt && !args.apply {
        return Err(Error::usage(
            "--adopt goes with --apply",
            "--adopt takes over a Secret in the cluster: add --apply, or drop --adopt",
        ));
    }
    let secret = seal::target(&args.namespace, &args.name, &args.data_key).map_err(Error::Usage)?;
    // The document first: a bad one costs no login, no Kubernetes call.
    let document = document::read(
        &args.from_file,
        args.input_format,
        &crate::env::DOCUMENT_LIMITS,
    )?;
    seal::check_document_size(&document, &secret)?;
    let backoff = Backoff::with_timeout(args.retry_timeout);
    let request = Request {
        secret,
        mount: args.transit_mount.clone(),
        key: args.transit_key.clone(),
        binding: args.binding,
        verify: !args.no_verify,
        adopt: args.adopt,
        backoff,
    };
    if !request.verify {
        tracing::warn!("--no-verify: the sealed Secret is not decrypted to check it");
    }

    // With --apply, read the Secret before logging in: a slow or refusing cluster does
    // not eat into a login token's TTL, and costs no encryption.
    let target = if args.apply {
        let (client, _) = kube::connect(&args.operator.cluster()).await?;
        let cluster = Cluster::new(client);
        let current = cluster.read(&request).await?;
        seal::check_ownership(&request, current.as_ref())?;
        Some((cluster, current))
    } else {
        None
    };
    let session =
        super::operator::session(&args.operator.vault, &args.operator.auth, false, backoff).await?;
    let sealer = Sealer {
        vault: session.vault(),
        token: session.token(),
        request: &request,
    };
    let result = match target {
        Some((cluster, current)) => seal::apply(&sealer, &cluster, current, &document)
            .await
            .map(|applied| applied.line(&args.name)),
        None => seal::to_manifest(&sealer, &document, args.output).await,
    };
    drop(document);
    session.close().await;
    print(&result?)
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            Error::input(
                format!("cannot write to stdout: {e}"),
                "redirect the output to a file or a pipe that stays open",
            )
        })
}
