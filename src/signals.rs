//! Waiting for the signals that end a long-running command (`serve`, `webhook`).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Resolves with the signal's name on SIGTERM (kubelet) or SIGINT (a terminal). If the
/// handlers cannot be installed it never resolves: the default action (exit) applies.
pub async fn terminated() -> &'static str {
    match install() {
        Some((term, int)) => wait(term, int).await,
        None => std::future::pending().await,
    }
}

/// A stop request that several tasks can wait for: the handlers are installed when it
/// is made (from then on SIGTERM and SIGINT no longer kill the process outright), and
/// every [`wait`](Shutdown::wait), before or after the signal, sees it.
#[derive(Clone)]
pub struct Shutdown {
    signalled: tokio::sync::watch::Receiver<Option<&'static str>>,
}

impl Shutdown {
    /// Install the handlers now and watch them in a task of the current runtime; the
    /// first signal is logged once, as `"{signal}: {what}"`.
    pub fn install(what: &'static str) -> Shutdown {
        let (tell, signalled) = tokio::sync::watch::channel(None);
        let handlers = install();
        tokio::spawn(async move {
            let Some((term, int)) = handlers else {
                // Keep the sender: a stop that cannot come is never reported.
                tell.closed().await;
                return;
            };
            let name = wait(term, int).await;
            tracing::info!("{name}: {what}");
            let _ = tell.send(Some(name));
        });
        Shutdown { signalled }
    }

    /// Resolves with the signal's name once one has arrived (at once if it already
    /// has); never, if the handlers could not be installed.
    pub async fn wait(mut self) -> &'static str {
        let seen = self
            .signalled
            .wait_for(Option::is_some)
            .await
            .map(|name| name.unwrap_or("a signal"));
        match seen {
            Ok(name) => name,
            Err(_) => std::future::pending().await,
        }
    }
}

fn install() -> Option<(Signal, Signal)> {
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => {
            tracing::warn!("cannot watch SIGTERM/SIGINT; the default action will stop the process");
            None
        }
    }
}

async fn wait(mut term: Signal, mut int: Signal) -> &'static str {
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
