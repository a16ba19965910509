#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(not(unix))]
compile_error!("mcp-transport-stdio supports Unix only for now");

mod codec;
mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod fuzzing;
mod process;
mod transport;

pub use config::{
    EnvPolicy, StderrMode, StdioConfigError, StdioTransportBuilder, DEFAULT_ENV_ALLOW_LIST,
};
pub use transport::StdioTransport;
