//! `webhook`: serve the injection as a mutating admission webhook until SIGTERM.

use crate::cli::WebhookArgs;
use crate::error::Error;
use crate::webhook::{CertFiles, Config, Server};

pub async fn run(args: WebhookArgs) -> Result<(), Error> {
    let config = Config {
        listen: args.listen,
        tls: CertFiles {
            cert: args.tls_cert,
            key: args.tls_key,
        },
        reload_interval: args.tls_reload_interval,
        max_body_bytes: args.max_request_bytes,
        drain_delay: args.drain_delay,
        // The namespace comes from each review.
        options: args.defaults.options(None),
        metrics_listen: args.metrics_listen.0,
    };
    let server = Server::bind(config).await?;
    let addr = server
        .local_addr()
        .map_err(|e| Error::internal(format!("webhook: no local address: {e}")))?;
    tracing::info!(
        "webhook: listening on https://{addr} (POST /mutate, GET /healthz, GET /readyz)"
    );
    match server.metrics_addr() {
        Some(Ok(metrics)) => tracing::info!("webhook: metrics on http://{metrics}/metrics"),
        Some(Err(e)) => {
            return Err(Error::internal(format!(
                "webhook: no local address for metrics: {e}"
            )));
        }
        None => tracing::info!("webhook: metrics off (--metrics-listen off)"),
    }
    server
        .run(async {
            crate::signals::terminated().await;
        })
        .await;
    Ok(())
}
