#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod auth;
mod catalog;
pub mod config;
mod error;
mod event;
mod monitor;
mod pool;
mod settings;

pub use catalog::{Collision, QualifiedTool, ToolCatalog};
pub use config::{parse_config, ServerConfig, ServerTransport};
pub use error::{Error, PoolConfigError};
pub use event::{PoolEvent, PoolHealth};
pub use pool::ConnectionPool;
pub use settings::PoolConfig;
