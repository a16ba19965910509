//! Building the transport a config entry describes.

use super::*;

/// A built transport, and its OAuth provider if the entry has `auth`.
pub(crate) struct Built {
    pub(crate) transport: Box<dyn mcp_conn_core::Transport>,
    #[cfg(feature = "oauth")]
    pub(crate) oauth: Option<mcp_transport_http::oauth::OAuthProvider>,
}

impl From<Box<dyn mcp_conn_core::Transport>> for Built {
    fn from(transport: Box<dyn mcp_conn_core::Transport>) -> Self {
        Built {
            transport,
            #[cfg(feature = "oauth")]
            oauth: None,
        }
    }
}

impl ServerTransport {
    /// The transport this entry describes, for the server `name` (used in
    /// logs and in the paths of errors).
    pub(crate) fn build(
        &self,
        name: &str,
        #[allow(unused_variables)] pool: &crate::PoolConfig,
    ) -> Result<Built, PoolConfigError> {
        let path = format!("mcpServers.{name}");
        match self {
            #[cfg(feature = "stdio")]
            ServerTransport::Stdio {
                command,
                args,
                args_as_written,
                env,
                cwd,
            } => {
                let mut b = mcp_transport_stdio::StdioTransport::builder(command)
                    .args(args)
                    .args_as_written(args_as_written)
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .name(name);
                if let Some(cwd) = cwd {
                    b = b.cwd(cwd);
                }
                let t = b.build().map_err(|e| {
                    use mcp_transport_stdio::StdioConfigError;
                    let field = match &e {
                        StdioConfigError::NulByte { what } if what.starts_with("args[") => {
                            format!("{path}.{what}")
                        }
                        StdioConfigError::EmptyProgram => format!("{path}.command"),
                        StdioConfigError::InvalidEnvName { name } => format!("{path}.env.{name}"),
                        _ => path.clone(),
                    };
                    PoolConfigError::new(field, e.to_string())
                })?;
                Ok(Built::from(Box::new(t) as Box<dyn mcp_conn_core::Transport>))
            }
            #[cfg(feature = "http")]
            ServerTransport::Http {
                url,
                headers,
                legacy_sse,
                auth,
                network,
            } => {
                use mcp_transport_http::{HttpConfigError, HttpMode, HttpTransport};
                let mut b = network.apply(HttpTransport::builder(url.clone()));
                #[cfg(feature = "oauth")]
                let mut oauth = None;
                if let Some(auth) = auth {
                    #[cfg(feature = "oauth")]
                    {
                        let provider = auth.provider(url, pool, &path)?;
                        b = b.token_provider(provider.clone());
                        oauth = Some(provider);
                    }
                    #[cfg(not(feature = "oauth"))]
                    {
                        let _ = auth;
                        return Err(PoolConfigError::new(
                            format!("{path}.auth"),
                            "OAuth is not compiled in (cargo feature `oauth` of mcp-conn-pool)",
                        ));
                    }
                }
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                if *legacy_sse {
                    b = b.mode(HttpMode::LegacySse);
                }
                let t = b.build().map_err(|e| {
                    let field = match &e {
                        HttpConfigError::InvalidHeader { name, .. }
                        | HttpConfigError::ReservedHeader { name } => {
                            format!("{path}.headers.{name}")
                        }
                        HttpConfigError::InvalidUrl { .. } => format!("{path}.url"),
                        HttpConfigError::Tls { setting, .. }
                        | HttpConfigError::InvalidProxy { setting, .. } => {
                            match HttpNetwork::key_of(setting) {
                                Some(key) => format!("{path}.{key}"),
                                None => path.clone(),
                            }
                        }
                        _ => path.clone(),
                    };
                    PoolConfigError::new(field, e.to_string())
                })?;
                Ok(Built {
                    transport: Box::new(t),
                    #[cfg(feature = "oauth")]
                    oauth,
                })
            }
            #[allow(unreachable_patterns)]
            _ => Err(PoolConfigError::new(
                path,
                "this kind of server is not compiled in (cargo features `stdio`, `http`)",
            )),
        }
    }
}
