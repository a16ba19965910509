//! The client engine: many requests in flight over one link, routed by id.
//!
//! A [`Session`] owns one task per link (`link.rs`), with two halves that
//! never wait on each other. The writing half drains a bounded queue of
//! outgoing messages and hands everything queued to the link in one batch.
//! The reading half (`reader.rs`) routes what arrives, also while a write
//! is pending: responses to their pending request, server requests to the
//! handlers, notifications to subscribers. When the link ends, it fails
//! every pending request at once with one typed error.

mod client;
mod handshake;
mod hints;
mod link;
mod listen;
mod options;
mod pending;
mod probe;
mod reader;
mod request;
mod session;
mod stateless;

pub use client::Client;
pub(crate) use handshake::{open_era, EraPlan};
pub(crate) use hints::ToolHints;
pub(crate) use listen::ListenFilter;
pub use options::{Progress, ProgressCallback, RequestOptions};
pub(crate) use probe::{ProbeAnswer, ProbeFailure};
pub(crate) use session::{EngineConfig, LinkLostHook, ReaderExit, Session};
