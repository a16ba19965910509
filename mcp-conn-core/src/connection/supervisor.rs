//! The supervisor: the one task that owns a connection's link and runs its
//! state machine (connect, backoff, reconnect, probes, shutdown).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::backoff::Backoff;
use crate::engine::{Client, ReaderExit, Session};
use crate::error::Error;
use crate::status::ConnectionStatus;
use crate::transport::TransportError;

use super::state::Shared;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Who asked for a connect, which decides how it treats the backoff.
#[derive(Debug, Clone, Copy)]
pub(super) enum Asker {
    /// The user called `connect()`: from `Error` or `Disconnected` this
    /// starts a fresh attempt budget at once; during a backoff it waits for
    /// the scheduled attempt.
    User,
    /// A call path that needs a client (`ensure_connected`, the pool): never
    /// resets the budget, never starts an attempt the schedule does not
    /// allow. `deadline` is set when the caller is willing to wait for the
    /// next allowed attempt ([`DuringBackoff::Wait`]).
    Implicit { deadline: Option<Instant> },
}

pub(super) enum Command {
    Connect {
        timeout: Option<Duration>,
        asker: Asker,
        reply: oneshot::Sender<Result<Client, Error>>,
    },
    Reconnect {
        reply: oneshot::Sender<Result<Client, Error>>,
    },
    Disconnect {
        reply: oneshot::Sender<()>,
    },
    Unhealthy {
        client: Client,
        failures: u32,
    },
    Monitoring(bool),
    /// (Re)open the listen stream with the filter in the state.
    Listen,
}

enum Phase {
    /// No link and not trying: `Disconnected` or `Error`.
    Idle,
    /// A live session.
    Connected(Session),
    /// Opening a link and running the handshake.
    Attempting {
        attempt: BoxFuture<Result<Session, Error>>,
        reconnect: bool,
    },
    /// Waiting before the next attempt: the reconnect backoff, or (in
    /// `Error`, for a caller willing to wait) the pause between implicit
    /// retries.
    Waiting {
        sleep: Pin<Box<Sleep>>,
        /// A reconnect attempt of the outage's budget, or one retry from
        /// `Error` (the status stays `Error` while waiting for it).
        retry: Retry,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Reconnect,
    FromError,
}

enum Event {
    Command(Option<Command>),
    LinkLost(ReaderExit),
    AttemptDone(Result<Session, Error>),
    BackoffElapsed(Retry),
    ProbeDue,
    ProbeDone(Option<(Client, u32)>),
    Reaped,
}

pub(super) struct Supervisor {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Box<Command>>,
    phase: Phase,
    waiters: Vec<oneshot::Sender<Result<Client, Error>>>,
    backoff: Backoff,
    /// Old sessions being shut down gracefully.
    closing: JoinSet<()>,
    probe: Option<BoxFuture<Option<(Client, u32)>>>,
    next_probe: Option<Instant>,
    /// When the last attempt failed or the link was lost, and why: implicit
    /// connects from `Error` wait `max_reconnect_delay` after it.
    last_failure: Option<(Instant, Error)>,
    /// When each restart within the restart budget's window began.
    restarts: VecDeque<Instant>,
}

impl Supervisor {
    pub(super) fn new(shared: Arc<Shared>, commands: mpsc::Receiver<Box<Command>>) -> Self {
        let c = &shared.config;
        let backoff = Backoff::new(
            c.reconnect_delay,
            c.max_reconnect_delay,
            c.reconnect_jitter,
            c.jitter_seed,
        );
        Supervisor {
            shared,
            commands,
            phase: Phase::Idle,
            waiters: Vec::new(),
            backoff,
            closing: JoinSet::new(),
            probe: None,
            next_probe: None,
            last_failure: None,
            restarts: VecDeque::new(),
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            let event = tokio::select! {
                cmd = self.commands.recv() => Event::Command(cmd.map(|c| *c)),
                ev = phase_event(&mut self.phase) => ev,
                ev = probe_event(&mut self.probe, self.next_probe) => ev,
                Some(_) = self.closing.join_next(), if !self.closing.is_empty() => Event::Reaped,
            };
            match event {
                Event::Command(None) => break,
                Event::Command(Some(cmd)) => self.on_command(cmd).await,
                Event::LinkLost(exit) => {
                    let reason = match exit {
                        ReaderExit::Lost(reason) => reason,
                        ReaderExit::Stopped => TransportError::Closed,
                    };
                    self.on_link_lost(reason);
                }
                Event::AttemptDone(outcome) => self.on_attempt(outcome),
                Event::BackoffElapsed(Retry::Reconnect) => self.start_attempt(true, None),
                Event::BackoffElapsed(Retry::FromError) => self.start_attempt(false, None),
                Event::ProbeDue => {
                    let shared = self.shared.clone();
                    self.next_probe = None;
                    self.probe = Some(Box::pin(async move { shared.scheduled_probe().await.1 }));
                }
                Event::ProbeDone(unhealthy) => {
                    self.probe = None;
                    self.schedule_probe();
                    if let Some((client, failures)) = unhealthy {
                        self.on_unhealthy(&client, failures);
                    }
                }
                Event::Reaped => {}
            }
        }
        // Every `Connection` handle is gone: shut down.
        self.stop(self.shared.closed()).await;
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect {
                timeout,
                asker,
                reply,
            } => self.on_connect(timeout, asker, reply),
            Command::Reconnect { reply } => {
                self.waiters.push(reply);
                match std::mem::replace(&mut self.phase, Phase::Idle) {
                    Phase::Attempting { attempt, reconnect } => {
                        self.phase = Phase::Attempting { attempt, reconnect };
                    }
                    Phase::Connected(session) => {
                        let closed = self.shared.closed();
                        self.retire(session, closed);
                        self.shared.state.lock().reconnect_attempts = 1;
                        self.start_attempt(true, None);
                    }
                    Phase::Idle | Phase::Waiting { .. } => {
                        self.shared.state.lock().reconnect_attempts = 1;
                        self.start_attempt(true, None);
                    }
                }
            }
            Command::Disconnect { reply } => {
                self.shared.state.lock().monitoring = false;
                self.stop(self.shared.closed()).await;
                let _ = reply.send(());
            }
            Command::Unhealthy { client, failures } => self.on_unhealthy(&client, failures),
            Command::Listen => {
                let filter = self.shared.state.lock().listen.clone();
                if let (Phase::Connected(session), Some(filter)) = (&mut self.phase, filter) {
                    session.listen(&filter);
                }
            }
            Command::Monitoring(on) => {
                if on {
                    if self.next_probe.is_none() && self.probe.is_none() {
                        self.schedule_probe();
                    }
                } else {
                    self.next_probe = None;
                    self.probe = None;
                }
            }
        }
    }

    /// A connect command, by who asked (see [`Asker`]).
    fn on_connect(
        &mut self,
        timeout: Option<Duration>,
        asker: Asker,
        reply: oneshot::Sender<Result<Client, Error>>,
    ) {
        let now = Instant::now();
        match (&self.phase, asker) {
            (Phase::Connected(session), _) => {
                let _ = reply.send(Ok(session.client.clone()));
            }
            (Phase::Attempting { .. }, _) => self.waiters.push(reply),
            // The user's connect from `Error` starts afresh, even while an
            // implicit caller waits for the pause to end.
            (
                Phase::Waiting {
                    retry: Retry::FromError,
                    ..
                },
                Asker::User,
            ) => {
                self.waiters.push(reply);
                self.fresh_start(timeout);
            }
            (Phase::Waiting { sleep, retry }, asker) => {
                let at = sleep.deadline();
                match asker {
                    Asker::User => self.waiters.push(reply),
                    Asker::Implicit {
                        deadline: Some(deadline),
                    } if at <= deadline => self.waiters.push(reply),
                    Asker::Implicit { .. } => {
                        let status = match retry {
                            Retry::Reconnect => ConnectionStatus::Reconnecting,
                            Retry::FromError => ConnectionStatus::Error,
                        };
                        let _ = reply.send(Err(self.backoff_error(status, at - now)));
                    }
                }
            }
            (Phase::Idle, Asker::User) => {
                self.waiters.push(reply);
                self.fresh_start(timeout);
            }
            (Phase::Idle, Asker::Implicit { deadline }) => {
                let gate = match (self.shared.status(), &self.last_failure) {
                    (ConnectionStatus::Error, Some((failed_at, _))) => {
                        Some(*failed_at + self.shared.config.max_reconnect_delay)
                    }
                    _ => None,
                };
                match gate {
                    // Never connected, disconnected, or the pause is over:
                    // one attempt, without touching the budget.
                    None => {
                        self.waiters.push(reply);
                        self.start_attempt(false, timeout);
                    }
                    Some(at) if at <= now => {
                        self.waiters.push(reply);
                        self.start_attempt(false, timeout);
                    }
                    Some(at) if deadline.is_some_and(|d| at <= d) => {
                        self.waiters.push(reply);
                        self.phase = Phase::Waiting {
                            sleep: Box::pin(tokio::time::sleep_until(at)),
                            retry: Retry::FromError,
                        };
                    }
                    Some(at) => {
                        let _ =
                            reply.send(Err(self.backoff_error(ConnectionStatus::Error, at - now)));
                    }
                }
            }
        }
    }

    /// The user's connect: a fresh attempt budget, an attempt now.
    fn fresh_start(&mut self, timeout: Option<Duration>) {
        self.shared.state.lock().reconnect_attempts = 0;
        self.restarts.clear();
        self.start_attempt(false, timeout);
    }

    fn backoff_error(&self, status: ConnectionStatus, retry_in: Duration) -> Error {
        Error::Backoff {
            connection: self.shared.name.clone(),
            status,
            retry_in,
            cause: self.last_failure.as_ref().map(|(_, e)| Box::new(e.clone())),
        }
    }

    /// Ends everything: the attempt, the backoff, the session (waiting until
    /// its link is closed), the monitor. Status `Disconnected`.
    async fn stop(&mut self, error: Error) {
        self.next_probe = None;
        self.probe = None;
        if let Phase::Connected(session) = std::mem::replace(&mut self.phase, Phase::Idle) {
            self.retire(session, error.clone());
        }
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Err(error.clone()));
        }
        while self.closing.join_next().await.is_some() {}
        self.shared.state.lock().reconnect_attempts = 0;
        self.shared.set_status(ConnectionStatus::Disconnected);
    }

    /// Moves a session out of service; its link is closed in the background
    /// (owned by `closing`), so a reconnect need not wait for it.
    /// Pending requests fail with `error` right now (a link already lost
    /// keeps its own reason).
    fn retire(&mut self, mut session: Session, error: Error) {
        self.shared.on_session_end();
        session.begin_shutdown(error.clone());
        self.closing.spawn(session.shutdown(error));
    }

    fn start_attempt(&mut self, reconnect: bool, timeout: Option<Duration>) {
        let timeout = timeout.unwrap_or(self.shared.config.connection_timeout);
        self.phase = Phase::Attempting {
            attempt: Box::pin(self.shared.clone().open_session(timeout)),
            reconnect,
        };
        self.shared.set_status(if reconnect {
            ConnectionStatus::Reconnecting
        } else {
            ConnectionStatus::Connecting
        });
    }

    fn on_attempt(&mut self, outcome: Result<Session, Error>) {
        let reconnect = matches!(
            self.phase,
            Phase::Attempting {
                reconnect: true,
                ..
            }
        );
        match outcome {
            Ok(mut session) => {
                // Listening goes on after a reconnect (stateless era).
                if let Some(filter) = self.shared.state.lock().listen.clone() {
                    session.listen(&filter);
                }
                let client = session.client.clone();
                if reconnect {
                    self.shared.counters.reconnected();
                }
                tracing::info!(connection = %self.shared.name, "connected");
                self.last_failure = None;
                self.shared.on_connected(client.clone());
                self.phase = Phase::Connected(session);
                for waiter in self.waiters.drain(..) {
                    let _ = waiter.send(Ok(client.clone()));
                }
                if self.shared.state.lock().monitoring {
                    self.schedule_probe();
                }
            }
            Err(error) => {
                tracing::warn!(connection = %self.shared.name, %error, "connect attempt failed");
                self.shared.record_error(&error);
                for waiter in self.waiters.drain(..) {
                    let _ = waiter.send(Err(error.clone()));
                }
                let retry = reconnect && error.is_retryable();
                let hint = error.retry_after();
                self.last_failure = Some((Instant::now(), error));
                self.backoff_or_give_up(retry, hint);
            }
        }
    }

    fn on_link_lost(&mut self, reason: TransportError) {
        let Phase::Connected(session) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        let error = Error::ConnectionLost {
            connection: self.shared.name.clone(),
            reason,
        };
        tracing::warn!(connection = %self.shared.name, %error, "link lost");
        self.shared.record_error(&error);
        let retry = error.is_retryable();
        let hint = error.retry_after();
        self.last_failure = Some((Instant::now(), error.clone()));
        self.retire(session, error.clone());
        self.next_probe = None;
        self.probe = None;
        self.shared.state.lock().reconnect_attempts = 0;
        if retry && self.shared.config.auto_reconnect && !self.restart_allowed(&error) {
            return;
        }
        self.backoff_or_give_up(retry, hint);
    }

    /// Counts a restart against the restart budget; past it, settles in
    /// `Error` with [`Error::RestartBudgetExhausted`] and returns false.
    fn restart_allowed(&mut self, lost: &Error) -> bool {
        let Some(budget) = self.shared.config.restart_budget else {
            return true;
        };
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= budget.window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() < budget.max_restarts as usize {
            self.restarts.push_back(now);
            return true;
        }
        let error = Error::RestartBudgetExhausted {
            connection: self.shared.name.clone(),
            restarts: budget.max_restarts,
            window: budget.window,
            last: Box::new(lost.clone()),
        };
        tracing::error!(connection = %self.shared.name, %error, "restart budget used up");
        self.shared.record_error(&error);
        self.last_failure = Some((now, error));
        self.phase = Phase::Idle;
        self.shared.set_status(ConnectionStatus::Error);
        false
    }

    fn on_unhealthy(&mut self, client: &Client, failures: u32) {
        let current = matches!(&self.phase, Phase::Connected(s) if s.client.same_session(client));
        if !current {
            return;
        }
        let reason = TransportError::Timeout {
            what: format!("{failures} health checks in a row"),
            after: self.shared.config.health_check_timeout,
        };
        if self.shared.config.auto_reconnect {
            self.on_link_lost(reason);
        }
    }

    /// After a lost link or a failed reconnect attempt: wait for the next
    /// attempt, or settle in `Error` when retrying is off or used up. A
    /// server's `Retry-After` (`hint`) stretches the delay, capped at
    /// `max_reconnect_delay`.
    fn backoff_or_give_up(&mut self, retry: bool, hint: Option<Duration>) {
        let config = &self.shared.config;
        let next = {
            let mut s = self.shared.state.lock();
            let can = retry
                && config.auto_reconnect
                && s.reconnect_attempts < config.max_reconnect_attempts;
            if can {
                s.reconnect_attempts += 1;
            }
            can.then_some(s.reconnect_attempts)
        };
        match next {
            Some(attempt) => {
                let mut delay = self.backoff.delay(attempt);
                if let Some(hint) = hint {
                    delay = delay.max(hint.min(config.max_reconnect_delay));
                }
                tracing::info!(
                    connection = %self.shared.name,
                    attempt,
                    of = config.max_reconnect_attempts,
                    ?delay,
                    "reconnecting"
                );
                self.phase = Phase::Waiting {
                    sleep: Box::pin(tokio::time::sleep(delay)),
                    retry: Retry::Reconnect,
                };
                self.shared.set_status(ConnectionStatus::Reconnecting);
            }
            None => {
                self.phase = Phase::Idle;
                self.shared.set_status(ConnectionStatus::Error);
            }
        }
    }

    fn schedule_probe(&mut self) {
        let monitoring = self.shared.state.lock().monitoring;
        self.next_probe = (monitoring && matches!(self.phase, Phase::Connected(_)))
            .then(|| Instant::now() + self.shared.config.health_check_interval);
    }
}

async fn phase_event(phase: &mut Phase) -> Event {
    match phase {
        Phase::Idle => std::future::pending().await,
        Phase::Connected(session) => Event::LinkLost(session.closed().await),
        Phase::Attempting { attempt, .. } => Event::AttemptDone(attempt.as_mut().await),
        Phase::Waiting { sleep, retry } => {
            sleep.as_mut().await;
            Event::BackoffElapsed(*retry)
        }
    }
}

async fn probe_event(
    probe: &mut Option<BoxFuture<Option<(Client, u32)>>>,
    next: Option<Instant>,
) -> Event {
    match (probe, next) {
        (Some(probe), _) => Event::ProbeDone(probe.as_mut().await),
        (None, Some(at)) => {
            tokio::time::sleep_until(at).await;
            Event::ProbeDue
        }
        (None, None) => std::future::pending().await,
    }
}
