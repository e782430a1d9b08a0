//! The agent's state and the one-shot accounting (ARCHITECTURE.md, I7).
//!
//! A request takes a *slot* under the lock before anything slow happens, so concurrent
//! requests can never take more slots than `max_deliveries`. A slot is then either
//! committed (a delivery was made) or released (the fetch or the rendering failed:
//! nothing was delivered, so nothing is consumed). The first slot carries the copy
//! given to `ready`; later ones fetch a fresh copy. Committed deliveries count as
//! finished only once their connection has closed, which is when `serve` may return
//! with `exit_after_delivery`.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{AgentState, AgentStatus, DocFormat, Source};
use crate::Plaintext;
use crate::fault::Fault;

enum Phase {
    Starting,
    Ready,
    Failed(String),
}

struct Inner {
    phase: Phase,
    /// The copy decrypted at start-up, until a delivery takes it.
    first: Option<Plaintext>,
    source: Option<Arc<dyn Source>>,
    /// Slots not taken yet.
    left: u32,
    /// Slots taken and not yet released, or committed on a connection still open.
    in_flight: u32,
    /// Deliveries made.
    delivered: u32,
    key_version: Option<u64>,
    /// `serve` has returned: nothing may be held any more.
    closed: bool,
    /// What must be done before anything is delivered (the start-up token's revoke):
    /// `true` once it is.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
}

pub(crate) struct Delivery {
    inner: Mutex<Inner>,
    finished: Notify,
    max: u32,
    exit_after_delivery: bool,
    format: DocFormat,
}

/// What a request for the secret gets.
pub(crate) enum Take {
    NotReady,
    Failed(String),
    Gone { delivered: u32 },
    Slot(Slot),
}

impl Delivery {
    pub(crate) fn new(
        max: u32,
        exit_after_delivery: bool,
        format: DocFormat,
        key_version: Option<u64>,
    ) -> Delivery {
        Delivery {
            inner: Mutex::new(Inner {
                phase: Phase::Starting,
                first: None,
                source: None,
                left: max,
                in_flight: 0,
                delivered: 0,
                key_version,
                closed: false,
                gate: None,
            }),
            finished: Notify::new(),
            max,
            exit_after_delivery,
            format,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not make the secret unreachable or leak it: the state
        // stays consistent because every update is a few plain assignments.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn max(&self) -> u32 {
        self.max
    }

    pub(crate) fn format(&self) -> DocFormat {
        self.format
    }

    pub(crate) fn key_version(&self) -> Option<u64> {
        self.lock().key_version
    }

    /// Take a delivery slot, or say why there is none.
    pub(crate) fn take(self: &Arc<Self>) -> Take {
        let mut inner = self.lock();
        match &inner.phase {
            Phase::Starting => return Take::NotReady,
            Phase::Failed(reason) => return Take::Failed(reason.clone()),
            Phase::Ready => {}
        }
        if inner.left == 0 {
            return Take::Gone {
                delivered: inner.delivered,
            };
        }
        inner.left -= 1;
        inner.in_flight += 1;
        let first = inner.first.take();
        let source = if first.is_none() {
            inner.source.clone()
        } else {
            None
        };
        Take::Slot(Slot {
            delivery: self.clone(),
            first,
            source,
            from_first: false,
            settled: false,
        })
    }

    /// A connection that committed `deliveries` has closed: its answer is written.
    pub(crate) fn connection_closed(&self, deliveries: u32) {
        if deliveries == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.in_flight = inner.in_flight.saturating_sub(deliveries);
        self.maybe_finished(&inner);
    }

    fn maybe_finished(&self, inner: &Inner) {
        if self.exit_after_delivery
            && matches!(inner.phase, Phase::Ready)
            && inner.left == 0
            && inner.in_flight == 0
        {
            // A stored permit: `serve` sees it even if it is not waiting right now.
            self.finished.notify_one();
        }
    }

    /// Resolves once every delivery has been made and written, when the agent is to
    /// exit after delivery; never otherwise.
    pub(crate) async fn finished(&self) {
        if self.exit_after_delivery {
            self.finished.notified().await
        } else {
            std::future::pending().await
        }
    }

    /// Drop whatever plaintext and source are left (they wipe themselves on drop), and
    /// refuse to hold any later: `serve` has returned.
    pub(crate) fn wipe(&self) {
        let (first, source) = {
            let mut inner = self.lock();
            inner.closed = true;
            (inner.first.take(), inner.source.take())
        };
        drop(first);
        drop(source);
    }

    pub(crate) fn status(&self) -> AgentStatus {
        let inner = self.lock();
        let (state, reason) = match &inner.phase {
            Phase::Starting => (AgentState::Starting, None),
            Phase::Failed(reason) => (AgentState::Failed, Some(reason.clone())),
            Phase::Ready if inner.left == 0 => (AgentState::Delivered, None),
            Phase::Ready => (AgentState::Ready, None),
        };
        AgentStatus {
            state,
            deliveries_left: inner.left,
            format: self.format,
            key_version: inner.key_version,
            reason,
        }
    }
}

/// One taken delivery slot. Dropped without `commit`, it is released: a cancelled or
/// failed request consumes nothing.
pub(crate) struct Slot {
    delivery: Arc<Delivery>,
    first: Option<Plaintext>,
    source: Option<Arc<dyn Source>>,
    from_first: bool,
    settled: bool,
}

impl Slot {
    /// The copy to deliver: the start-up copy if this slot has it, else a fresh one
    /// from the source.
    pub(crate) async fn obtain(&mut self) -> Result<Plaintext, Fault> {
        let gate = self.delivery.lock().gate.clone();
        if let Some(mut gate) = gate {
            // A gate whose task ended without saying done (it panicked) lets us go:
            // the token then expires with its short TTL.
            let _ = gate.wait_for(|done| *done).await;
        }
        if let Some(first) = self.first.take() {
            self.from_first = true;
            return Ok(first);
        }
        match &self.source {
            Some(source) => source.fetch().await,
            None => Err(Fault::Internal(
                "a further delivery was allowed but no source can produce one".into(),
            )),
        }
    }

    /// Nothing was delivered; the copy goes back if it was the start-up copy (it has
    /// not left the agent), otherwise it is wiped.
    pub(crate) fn give_back(mut self, copy: Plaintext) {
        if self.from_first {
            self.first = Some(copy);
        }
        self.release();
    }

    /// The delivery is being made; returns its number (1-based).
    pub(crate) fn commit(mut self) -> u32 {
        self.settled = true;
        let mut inner = self.delivery.lock();
        inner.delivered += 1;
        inner.delivered
    }

    fn release(&mut self) {
        if self.settled {
            return;
        }
        self.settled = true;
        let first = self.first.take();
        let mut inner = self.delivery.lock();
        inner.left += 1;
        inner.in_flight = inner.in_flight.saturating_sub(1);
        let keep = matches!(inner.phase, Phase::Ready) && inner.first.is_none() && !inner.closed;
        let dropped = match first {
            Some(copy) if keep => {
                inner.first = Some(copy);
                None
            }
            other => other,
        };
        drop(inner);
        drop(dropped);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Lets the caller of [`super::Agent::serve`] report how start-up went.
#[derive(Clone)]
pub struct StatusHandle {
    delivery: Arc<Delivery>,
}

impl StatusHandle {
    pub(crate) fn new(delivery: Arc<Delivery>) -> StatusHandle {
        StatusHandle { delivery }
    }

    /// The plaintext is here: serve `first` to the first allowed request, and use
    /// `source` for each later delivery. Without a source only one delivery is possible,
    /// whatever `max_deliveries` says. Ignored (and `first` wiped) unless the agent is
    /// still starting (or `serve` has already returned).
    /// Hold every delivery until `done` says `true` (or its sender goes away), while
    /// `/v1/status` already says ready: the start-up token's revoke runs beside the
    /// first request instead of before "ready".
    pub fn deliver_after(&self, done: tokio::sync::watch::Receiver<bool>) {
        self.delivery.lock().gate = Some(done);
    }

    pub fn ready(&self, first: Plaintext, source: Option<Arc<dyn Source>>) {
        let mut inner = self.delivery.lock();
        if inner.closed || !matches!(inner.phase, Phase::Starting) {
            drop(inner);
            drop(first);
            tracing::warn!("ready() called on an agent that is no longer starting; ignored");
            return;
        }
        if source.is_none() && inner.left > 1 {
            tracing::warn!(
                max_deliveries = self.delivery.max,
                "no source for further deliveries: serving once"
            );
            inner.left = 1;
        }
        inner.phase = Phase::Ready;
        inner.first = Some(first);
        inner.source = source;
        let left = inner.left;
        let key_version = inner.key_version;
        drop(inner);
        tracing::info!(deliveries_left = left, key_version, "ready");
    }

    /// Start-up failed: `/v1/status` says `failed` with `reason`, requests for the
    /// secret get 503. Any plaintext still held is wiped.
    pub fn failed(&self, reason: String) {
        let (first, source) = {
            let mut inner = self.delivery.lock();
            inner.phase = Phase::Failed(reason);
            (inner.first.take(), inner.source.take())
        };
        drop(first);
        drop(source);
    }

    /// The Transit key version of the ciphertext, once known (for status and audit).
    pub fn set_key_version(&self, version: Option<u64>) {
        self.delivery.lock().key_version = version;
    }

    /// What `/v1/status` would answer now.
    pub fn status(&self) -> AgentStatus {
        self.delivery.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(max: u32) -> (Arc<Delivery>, StatusHandle) {
        let delivery = Arc::new(Delivery::new(max, true, DocFormat::Json, None));
        let handle = StatusHandle::new(delivery.clone());
        (delivery, handle)
    }

    #[test]
    fn nothing_before_ready_and_once_after() {
        let (delivery, handle) = ready(1);
        assert!(matches!(delivery.take(), Take::NotReady));
        handle.ready(Plaintext::new(b"{}".to_vec()), None);
        let Take::Slot(slot) = delivery.take() else {
            panic!("expected a slot")
        };
        assert!(matches!(delivery.take(), Take::Gone { delivered: 0 }));
        assert_eq!(slot.commit(), 1);
        assert_eq!(delivery.status().state, AgentState::Delivered);
        assert!(matches!(delivery.take(), Take::Gone { delivered: 1 }));
    }

    #[test]
    fn a_released_slot_returns_the_first_copy() {
        let (delivery, handle) = ready(1);
        handle.ready(Plaintext::new(b"{}".to_vec()), None);
        let Take::Slot(mut slot) = delivery.take() else {
            panic!("expected a slot")
        };
        let copy = futures_now(slot.obtain()).unwrap();
        slot.give_back(copy);
        let status = delivery.status();
        assert_eq!(
            (status.state, status.deliveries_left),
            (AgentState::Ready, 1)
        );
        let Take::Slot(mut slot) = delivery.take() else {
            panic!("expected a slot again")
        };
        assert_eq!(futures_now(slot.obtain()).unwrap().expose(), b"{}");
        drop(slot);
        assert_eq!(delivery.status().deliveries_left, 1, "dropped = released");
    }

    #[test]
    fn failed_wipes_and_reports_reason() {
        let (delivery, handle) = ready(1);
        handle.failed("login denied".into());
        let status = delivery.status();
        assert_eq!(status.state, AgentState::Failed);
        assert_eq!(status.reason.as_deref(), Some("login denied"));
        assert!(matches!(delivery.take(), Take::Failed(_)));
    }

    /// Poll a future that is known to be ready without awaiting.
    fn futures_now<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("future not ready"),
        }
    }
}
