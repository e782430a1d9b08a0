//! Bounded retries with exponential backoff and full jitter, for transient faults only
//! (connection refused, 5xx, 429, sealed). A 4xx is an answer, not a fault: it is
//! returned at once.
//!
//! When thousands of pods start together (a node pool replaced), their first attempts
//! meet an overloaded or rate-limited Vault at the same moment. Full jitter (each pause
//! drawn uniformly from zero to the current backoff step) spreads their retries out
//! instead of repeating the stampede in step; a `Retry-After` from the server is a
//! floor under the pause, never shortened, with the jitter on top so that everyone told
//! "retry after 1 s" does not come back in the same millisecond.

use std::future::Future;
use std::time::Duration;

// tokio's clock: the same as std's at run time, and one a test can pause.
use tokio::time::Instant;

/// How long to keep trying and how fast to back off.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Keep trying until this much time has passed since the first attempt: the last
    /// attempt may start as late as that deadline.
    pub timeout: Duration,
    /// The first backoff step; doubled after each failure up to `max`.
    pub initial: Duration,
    /// The cap of a backoff step (and so of the jitter of any one pause).
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

/// Errors that know whether they are worth retrying, and when.
pub trait Transient {
    fn is_transient(&self) -> bool;

    /// How long the server asked us to wait (`Retry-After`), when it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// What to do after a failed attempt.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Sleep this long, then try again.
    Retry(Duration),
    /// Return the error.
    GiveUp,
}

/// The pause before the next attempt, `elapsed` after the first one, with backoff step
/// `step` and `jitter` in [0, 1]: `retry_after + jitter * step`, never past the deadline.
/// A server that asks for more time than is left is not asked again.
fn next(
    backoff: &Backoff,
    elapsed: Duration,
    step: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Next {
    let Some(left) = backoff
        .timeout
        .checked_sub(elapsed)
        .filter(|l| !l.is_zero())
    else {
        return Next::GiveUp;
    };
    let floor = retry_after.unwrap_or_default();
    if floor > left {
        return Next::GiveUp;
    }
    let pause = floor + step.min(backoff.max).mul_f64(jitter.clamp(0.0, 1.0));
    Next::Retry(pause.min(left))
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
    let mut step = backoff.initial;
    let mut tries = 1u32;
    loop {
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let retry_after = error.retry_after();
        let Next::Retry(pause) = next(
            &backoff,
            start.elapsed(),
            step,
            retry_after,
            fastrand::f64(),
        ) else {
            return Err(error);
        };
        tracing::warn!(
            operation = what,
            attempt = tries,
            retry_in_ms = pause.as_millis() as u64,
            retry_after_s = retry_after.map(|d| d.as_secs()),
            error = %error,
            "transient failure, retrying"
        );
        tokio::time::sleep(pause).await;
        step = (step * 2).min(backoff.max);
        tries += 1;
    }
}

/// A `Retry-After` header value in seconds (`delay-seconds`). An HTTP date or anything
/// else malformed is ignored: the backoff then decides alone.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `Retry-After` of an answer's headers, read as [`parse_retry_after`] does.
pub fn retry_after_header(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn backoff() -> Backoff {
        Backoff {
            timeout: 10_000 * MS,
            initial: 100 * MS,
            max: 1_000 * MS,
        }
    }

    #[test]
    fn full_jitter_spans_zero_to_the_capped_step() {
        let b = backoff();
        assert_eq!(
            next(&b, MS, 400 * MS, None, 0.0),
            Next::Retry(Duration::ZERO)
        );
        assert_eq!(next(&b, MS, 400 * MS, None, 0.5), Next::Retry(200 * MS));
        // The cap bounds a step however many failures came before.
        assert_eq!(next(&b, MS, 8_000 * MS, None, 1.0), Next::Retry(1_000 * MS));
    }

    #[test]
    fn retry_after_is_a_floor_with_jitter_on_top() {
        let b = backoff();
        assert_eq!(
            next(&b, MS, 400 * MS, Some(2_000 * MS), 0.0),
            Next::Retry(2_000 * MS)
        );
        assert_eq!(
            next(&b, MS, 400 * MS, Some(2_000 * MS), 0.5),
            Next::Retry(2_200 * MS)
        );
        // "Retry after 0 s" (OpenBao's rate limit near the end of its interval) still
        // spreads the retries out.
        assert_eq!(
            next(&b, MS, 400 * MS, Some(Duration::ZERO), 0.5),
            Next::Retry(200 * MS)
        );
    }

    #[test]
    fn the_last_attempt_starts_at_the_deadline_not_before_it() {
        let b = backoff();
        // 50 ms left and a 400 ms pause drawn: sleep the 50 ms and try once more.
        assert_eq!(
            next(&b, 9_950 * MS, 400 * MS, None, 1.0),
            Next::Retry(50 * MS)
        );
        assert_eq!(next(&b, 10_000 * MS, 400 * MS, None, 0.0), Next::GiveUp);
        // A server that asks for more than is left is not asked again early.
        assert_eq!(
            next(&b, 9_000 * MS, 400 * MS, Some(2_000 * MS), 0.0),
            Next::GiveUp
        );
    }

    #[test]
    fn retry_after_takes_seconds_and_ignores_the_rest() {
        assert_eq!(parse_retry_after("3"), Some(3_000 * MS));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn retries_until_the_deadline_and_returns_the_last_error() {
        struct Busy;
        impl std::fmt::Display for Busy {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("busy")
            }
        }
        impl Transient for Busy {
            fn is_transient(&self) -> bool {
                true
            }
        }
        let start = tokio::time::Instant::now();
        let mut attempts = 0;
        let b = Backoff::with_timeout(Duration::from_secs(10));
        let result: Result<(), Busy> = retry("test", b, || {
            attempts += 1;
            async { Err(Busy) }
        })
        .await;
        assert!(result.is_err());
        // With the clock paused, the sleeps are exact: the last attempt starts at the
        // deadline (10 s), not a backoff step before it.
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert!(attempts >= 3, "{attempts}");
    }
}
