//! Waiting on a condition with a deadline, instead of sleeping a fixed time and hoping.
//!
//! A check is polled until it holds ([`Poll::eventually`], [`assert_eventually!`]) or, for
//! "this never happens", asserted at every poll for a whole period ([`Poll::always`]).
//! When time runs out the panic says what was awaited, for how long and how many
//! times it was tried, with the message built at that moment (so it can carry the
//! latest log).
//!
//! [`assert_eventually!`]: crate::assert_eventually

use std::future::Future;
use std::time::{Duration, Instant};

/// How long to wait and how often to look.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    timeout: Duration,
    every: Duration,
}

/// The default: look every 20 ms for up to 20 s (generous, for a loaded CI machine; a
/// passing check returns at once).
pub const WAIT: Poll = Poll {
    timeout: Duration::from_secs(20),
    every: Duration::from_millis(20),
};

impl Poll {
    /// Wait up to `timeout`, looking every 20 ms.
    pub const fn within(timeout: Duration) -> Poll {
        Poll {
            timeout,
            every: WAIT.every,
        }
    }

    /// Look every `every` instead.
    pub const fn every(self, every: Duration) -> Poll {
        Poll { every, ..self }
    }

    /// Poll `check` until it gives `Some`; `None` once the time is up. It is always
    /// tried at least once, and once more at the deadline.
    pub fn until<T>(self, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::sleep(self.every.min(deadline - now));
        }
    }

    /// [`until`](Self::until) for an async check, sleeping on the runtime's timer.
    pub async fn until_async<T, F>(self, mut check: impl FnMut() -> F) -> Option<T>
    where
        F: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(value) = check().await {
                return Some(value);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep(self.every.min(deadline - now)).await;
        }
    }

    /// Poll `check` until it gives `Some`, and return that; panic with `what()` when
    /// the time is up.
    pub fn eventually<T>(
        self,
        check: impl FnMut() -> Option<T>,
        what: impl FnOnce() -> String,
    ) -> T {
        let started = Instant::now();
        let mut tries = 0u32;
        let mut check = check;
        let found = self.until(|| {
            tries += 1;
            check()
        });
        found.unwrap_or_else(|| self.timed_out(started, tries, what()))
    }

    /// [`eventually`](Self::eventually) for an async check.
    pub async fn eventually_async<T, F>(
        self,
        mut check: impl FnMut() -> F,
        what: impl FnOnce() -> String,
    ) -> T
    where
        F: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        let mut tries = 0u32;
        let found = self
            .until_async(|| {
                tries += 1;
                check()
            })
            .await;
        found.unwrap_or_else(|| self.timed_out(started, tries, what()))
    }

    /// Assert `check` at every poll for the whole timeout: for what must not happen
    /// (a process that must keep running, a server that must keep serving). Panics
    /// with `what()` the first time it fails.
    pub fn always(self, mut check: impl FnMut() -> bool, what: impl FnOnce() -> String) {
        let started = Instant::now();
        let failed = self.until(|| (!check()).then_some(()));
        if failed.is_some() {
            panic!("no longer true after {:?}: {}", started.elapsed(), what());
        }
    }

    /// [`always`](Self::always) for an async check.
    pub async fn always_async<F>(self, mut check: impl FnMut() -> F, what: impl FnOnce() -> String)
    where
        F: Future<Output = bool>,
    {
        let started = Instant::now();
        let failed = self
            .until_async(|| {
                let held = check();
                async move { (!held.await).then_some(()) }
            })
            .await;
        if failed.is_some() {
            panic!("no longer true after {:?}: {}", started.elapsed(), what());
        }
    }

    fn timed_out(self, started: Instant, tries: u32, what: String) -> ! {
        panic!(
            "still not true after {:?} ({tries} tries, every {:?}): {what}",
            started.elapsed(),
            self.every
        )
    }
}

/// [`WAIT`]`.eventually(check, what)`.
pub fn eventually<T>(check: impl FnMut() -> Option<T>, what: impl FnOnce() -> String) -> T {
    WAIT.eventually(check, what)
}

/// Assert that a condition becomes true within [`WAIT`] (or a given [`Poll`]):
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use secret_zero_testbed::assert_eventually;
/// use secret_zero_testbed::wait::Poll;
///
/// let started = Instant::now();
/// let waited = || started.elapsed() > Duration::from_millis(30);
/// assert_eventually!(waited());
/// assert_eventually!(waited(), "only {:?}", started.elapsed());
/// assert_eventually!(Poll::within(Duration::from_secs(1)); waited(), "not yet");
/// ```
///
/// The message arguments are evaluated when the time is up, so they show the latest
/// state.
#[macro_export]
macro_rules! assert_eventually {
    ($poll:expr; $cond:expr, $($arg:tt)+) => {
        $crate::wait::Poll::eventually(
            $poll,
            || ($cond).then_some(()),
            || format!($($arg)+),
        )
    };
    ($cond:expr, $($arg:tt)+) => {
        $crate::assert_eventually!($crate::wait::WAIT; $cond, $($arg)+)
    };
    ($cond:expr $(,)?) => {
        $crate::assert_eventually!($crate::wait::WAIT; $cond, "{}", stringify!($cond))
    };
}
