#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod auth;
mod config;
mod exchange;
mod failure;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing;
mod legacy;
mod link;
#[cfg(feature = "oauth")]
pub mod oauth;
mod session;
mod sse;
mod stateless;
mod stream;

pub use auth::{AuthChallenge, TokenProvider};
pub use config::{HttpConfigError, HttpMode, HttpTransport, HttpTransportBuilder};
pub use session::{SESSION_HEADER, VERSION_HEADER};
