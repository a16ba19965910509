//! The client engine: many requests in flight over one link, routed by id.
//!
//! A [`Session`] owns two tasks per link. The writer drains a bounded queue of
//! outgoing messages and hands everything queued to the link in one batch. The
//! reader routes what arrives: responses to their pending request, server
//! requests to the handlers, notifications to subscribers. When the link ends,
//! the reader fails every pending request at once with one typed error.

mod client;
mod handshake;
mod hints;
mod listen;
mod options;
mod pending;
mod reader;
mod session;
mod stateless;

pub use client::Client;
pub(crate) use handshake::{open_era, EraPlan};
pub(crate) use hints::ToolHints;
pub(crate) use listen::ListenFilter;
pub use options::{Progress, ProgressCallback, RequestOptions};
pub(crate) use session::{EngineConfig, LinkLostHook, ReaderExit, Session};
