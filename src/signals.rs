//! Waiting for the signals that end a long-running command (`serve`, `webhook`).

/// Resolves with the signal's name on SIGTERM (kubelet) or SIGINT (a terminal). If the
/// handlers cannot be installed it never resolves: the default action (exit) applies.
pub async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch SIGTERM/SIGINT; the default action will stop the process");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
