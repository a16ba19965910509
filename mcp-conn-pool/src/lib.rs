#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod auth;
mod catalog;
pub mod config;
mod error;
mod event;
mod monitor;
mod pool;
mod reload;
mod schedule;
mod settings;

pub use catalog::{Collision, QualifiedTool, ToolCatalog, ToolSetDiff};
pub use config::{
    parse_config, parse_config_with, read_config_file, ConfigContext, HttpNetwork, ProxyChoice,
    ServerConfig, ServerTransport,
};
pub use error::{Error, PoolConfigError};
pub use event::{PoolEvent, PoolHealth};
pub use pool::ConnectionPool;
pub use reload::{ConfigChanges, ConfigWatcher};
pub use settings::PoolConfig;
