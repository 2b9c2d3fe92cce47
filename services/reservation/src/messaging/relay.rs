//! The outbox relay's wake-up, shared before the relay exists.
//!
//! `AsyncRuntime::start` takes the message handler and only then creates the relay and its
//! `RelaySignal`, so the handler is built with this empty slot and the slot is filled right
//! after the start. A wake before that finds no relay and does nothing: the relay's poll
//! (`OUTBOX_POLL_MS`) publishes the row anyway.

use common::messaging::outbox::RelaySignal;
use std::sync::{Arc, OnceLock};

#[derive(Clone, Default)]
pub struct RelayWaker(Arc<OnceLock<RelaySignal>>);

impl RelayWaker {
    /// Connect to the relay of the runtime just started. Only the first call counts.
    pub fn set(&self, signal: RelaySignal) {
        let _ = self.0.set(signal);
    }

    /// Publish now: call right after a commit that appended outbox rows.
    pub fn wake(&self) {
        if let Some(signal) = self.0.get() {
            signal.wake();
        }
    }
}
