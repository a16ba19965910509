//! Scheduled probes started without waiting: what a monitor of thousands
//! of servers uses (see `engine/probe.rs` for the light `ping` behind it).

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::engine::Client;
use crate::status::ProbeResult;

use super::Connection;

/// A health probe in flight, started by [`Connection::start_probe`]; its
/// outcome comes from [`Connection::check_probe`].
#[derive(Debug)]
pub struct PendingProbe {
    pub(super) client: Client,
    pub(super) id: i64,
    pub(super) sent: Instant,
    pub(super) deadline: Instant,
}

impl PendingProbe {
    /// When the probe counts as failed if still unanswered
    /// (`health_check_timeout` after it was sent).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// How [`Connection::start_probe`] went.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProbeStart {
    /// Nothing to wait for: the probe was skipped (traffic proves life)
    /// or there was nothing to probe (not connected).
    Finished(ProbeResult),
    /// Sent; ask [`Connection::check_probe`] for its outcome.
    Sent(PendingProbe),
    /// This connection is not probed so (the stateless era, which has no
    /// `ping`; `HealthProbe::ListTools`; a full queue): use
    /// [`Connection::scheduled_probe`].
    Unavailable,
}

impl Connection {
    /// Starts a scheduled probe and returns without waiting for its
    /// answer: the same rules as [`Connection::scheduled_probe`] (skipped
    /// while traffic proves life), but the `ping` takes no pending-request
    /// slot, no timer and no reply channel. Its answer only tells
    /// `answered`, if given (`notify_one`: the answers of many probes make
    /// one wake-up of a monitor that is busy or not yet waiting). Ask
    /// [`Connection::check_probe`] for the outcome, at any time. For
    /// monitors of many servers. A session has one light probe at a time: a
    /// second one started before the first is decided replaces it (the
    /// first then fails at its deadline). A probe of a session that ends
    /// fails at the next check.
    ///
    /// ```
    /// # use mcp_conn_core::{Connection, ConnectionStatus, ProbeStart};
    /// # use mcp_conn_core::testing::{FakeServer, MockTransport};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let conn = Connection::new("demo", MockTransport::serving(FakeServer::default()));
    /// conn.connect().await.expect("connects");
    /// match conn.start_probe(None) {
    ///     ProbeStart::Sent(mut probe) => loop {
    ///         match conn.check_probe(probe, tokio::time::Instant::now()) {
    ///             Ok(result) => break assert!(result.ok),
    ///             Err(waiting) => probe = waiting,
    ///         }
    ///         tokio::task::yield_now().await; // a real monitor waits for a wake-up
    ///     },
    ///     ProbeStart::Finished(result) => assert!(result.ok),
    ///     ProbeStart::Unavailable => { let _ = conn.scheduled_probe().await; }
    ///     _ => {}
    /// }
    /// # conn.disconnect().await;
    /// # }
    /// ```
    pub fn start_probe(&self, answered: Option<Arc<Notify>>) -> ProbeStart {
        self.shared.start_probe(answered)
    }

    /// The outcome of `probe`, once it has one: its answer, or a failure
    /// once `now` is past its deadline; `Err(probe)` gives it back while it
    /// is still waiting (so each probe is decided, and recorded, once).
    /// Recorded like [`Connection::scheduled_probe`]'s; after
    /// `max_consecutive_health_failures` the session is replaced.
    pub fn check_probe(
        &self,
        probe: PendingProbe,
        now: Instant,
    ) -> Result<ProbeResult, PendingProbe> {
        let (result, unhealthy) = self.shared.check_probe(probe, now)?;
        if let Some((client, failures)) = unhealthy {
            self.replace_unhealthy(client, failures);
        }
        Ok(result)
    }
}
