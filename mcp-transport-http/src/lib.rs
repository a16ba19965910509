#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod answer;
mod auth;
mod config;
mod connector;
mod direct;
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
mod proxy;
mod proxy_stream;
mod reply;
mod session;
mod sse;
mod stateless;
mod stream;
mod tls;
mod trust_store;

pub use auth::{AuthChallenge, TokenProvider};
pub use config::{HttpConfigError, HttpMode, HttpTransport, HttpTransportBuilder};
pub use connector::{Negotiated, TransportNetwork};
pub use session::{SESSION_HEADER, VERSION_HEADER};
pub use tls::TlsRoots;
