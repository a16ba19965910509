#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod config;
mod exchange;
mod failure;
mod legacy;
mod link;
mod session;
mod sse;
mod stateless;
mod stream;

pub use auth::{AuthChallenge, TokenProvider};
pub use config::{HttpConfigError, HttpMode, HttpTransport, HttpTransportBuilder};
pub use session::{SESSION_HEADER, VERSION_HEADER};
