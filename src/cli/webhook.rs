//! Flags of `webhook`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::env;

/// `secret-zero webhook`: serve the injection of `secret-zero inject` as a mutating
/// admission webhook (admission.k8s.io/v1) over HTTPS: POST /mutate, GET /healthz,
/// GET /readyz; and Prometheus metrics over plain HTTP on --metrics-listen (GET /metrics).
///
/// Pods annotated `secret-zero.dev/inject: "true"` get the agent, by the same code as
/// `inject`; others pass untouched. The certificate files are re-read when they change.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// PEM certificate chain, leaf first (cert-manager's tls.crt).
    #[arg(long, env = env::TLS_CERT, value_name = "PATH")]
    pub tls_cert: PathBuf,

    /// PEM private key of the certificate (cert-manager's tls.key).
    #[arg(long, env = env::TLS_KEY, value_name = "PATH")]
    pub tls_key: PathBuf,

    /// Address to listen on.
    #[arg(long, env = env::LISTEN, default_value = env::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Address of the plain-HTTP Prometheus endpoint (GET /metrics), or `off` to serve
    /// none. A port already in use exits 13.
    #[arg(long, env = env::METRICS_LISTEN, value_parser = metrics_listen, default_value = env::DEFAULT_METRICS_LISTEN, value_name = "ADDR|off")]
    pub metrics_listen: MetricsListen,

    /// How often the certificate files are checked for changes.
    #[arg(long, env = env::TLS_RELOAD_INTERVAL, value_parser = super::duration, default_value = env::DEFAULT_TLS_RELOAD_INTERVAL)]
    pub tls_reload_interval: Duration,

    /// Larger request bodies are refused with 413 (the API server's own limit is 3 MiB).
    #[arg(long, env = env::MAX_REQUEST_BYTES, default_value_t = env::DEFAULT_MAX_BODY_BYTES)]
    pub max_request_bytes: usize,

    /// After SIGTERM, keep serving this long with /readyz failing, so that endpoints
    /// drop this pod before it stops listening.
    #[arg(long, env = env::DRAIN_DELAY, value_parser = super::duration, default_value = env::DEFAULT_DRAIN_DELAY)]
    pub drain_delay: Duration,

    #[command(flatten)]
    pub defaults: super::InjectDefaults,
}

/// `--metrics-listen`: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

/// "0.0.0.0:9090", "127.0.0.1:0", "[::]:9090" or "off". An empty value is refused:
/// `off` says it (an empty `SECRET_ZERO_METRICS_LISTEN` counts as unset, as every
/// variable does).
pub fn metrics_listen(text: &str) -> Result<MetricsListen, String> {
    if text == env::METRICS_OFF {
        return Ok(MetricsListen(None));
    }
    text.parse::<SocketAddr>()
        .map(|addr| MetricsListen(Some(addr)))
        .map_err(|_| {
            format!(
                "{text:?} is not an address such as 0.0.0.0:9090 (or {} to serve no metrics)",
                env::METRICS_OFF
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_listen_is_an_address_or_off() {
        assert_eq!(metrics_listen("off"), Ok(MetricsListen(None)));
        assert_eq!(
            metrics_listen(env::DEFAULT_METRICS_LISTEN),
            Ok(MetricsListen(Some("0.0.0.0:9090".parse().unwrap())))
        );
        assert_eq!(
            metrics_listen("[::1]:9090"),
            Ok(MetricsListen(Some("[::1]:9090".parse().unwrap())))
        );
        for bad in ["", "9090", "OFF", "localhost:9090", "0.0.0.0"] {
            let e = metrics_listen(bad).unwrap_err();
            assert!(e.contains("off"), "{e}");
        }
    }
}
