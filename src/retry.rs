//! Bounded retries with exponential backoff and jitter, for transient faults only
//! (connection refused, 5xx, 429, sealed). A 4xx is an answer, not a fault: it is
//! returned at once.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to keep trying and how fast to back off.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Give up once this much time has passed since the first attempt.
    pub timeout: Duration,
    /// The first pause; doubled after each failure up to `max`.
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            timeout: Duration::from_secs(30),
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The default pacing with a given overall timeout.
    pub fn with_timeout(timeout: Duration) -> Backoff {
        Backoff {
            timeout,
            ..Backoff::default()
        }
    }
}

/// Run `attempt` until it succeeds, fails with a non-transient error, or `backoff.timeout`
/// runs out; the last error is returned. `what` names the operation in the log.
pub async fn retry<T, E, F, Fut>(what: &str, backoff: Backoff, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Transient + std::fmt::Display,
{
    let start = Instant::now();
    let mut pause = backoff.initial;
    let mut tries = 1u32;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() && start.elapsed() + pause < backoff.timeout => {
                // Full jitter keeps a fleet of restarting pods from retrying in step.
                let sleep = pause.mul_f64(0.5 + fastrand::f64() * 0.5);
                tracing::warn!(
                    operation = what,
                    attempt = tries,
                    retry_in_ms = sleep.as_millis() as u64,
                    error = %e,
                    "transient failure, retrying"
                );
                tokio::time::sleep(sleep).await;
                pause = (pause * 2).min(backoff.max);
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Errors that know whether they are worth retrying.
pub trait Transient {
    fn is_transient(&self) -> bool;
}
