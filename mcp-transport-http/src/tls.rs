//! TLS settings: which authorities are trusted (the platform's store, the
//! web's roots, extra PEM files), the client certificate for mutual TLS, and
//! the `rustls` client configuration made from them once, in `build()`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{HttpConfigError, HttpTransportBuilder};
use crate::proxy::Env;

/// Where the certificate authorities a transport trusts come from, besides
/// the extra ones given with [`HttpTransportBuilder::ca_file`] or
/// [`HttpTransportBuilder::ca_pem`] (always trusted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The platform's trust store (read once per process with `rustls-native-certs`, which
    /// honours `SSL_CERT_FILE`/`SSL_CERT_DIR` of the process), plus the
    /// web's roots (Mozilla's list, built in). Default.
    #[default]
    PlatformAndWeb,
    /// The platform's trust store only.
    Platform,
    /// The web's roots only (the behaviour before this setting existed).
    Web,
    /// Only the extra authorities given to the builder.
    ExtraOnly,
}

/// PEM text, from a file or given inline.
#[derive(Clone)]
pub(crate) enum Pem {
    File(PathBuf),
    Inline(Vec<u8>),
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{}", path.display()),
            Pem::Inline(_) => f.write_str("<inline PEM>"),
        }
    }
}

/// The TLS settings as given to the builder, checked in `build()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsOptions {
    pub(crate) roots: TlsRoots,
    pub(crate) extra_roots: Vec<Pem>,
    /// Certificate chain and private key (the key is never shown).
    pub(crate) identity: Option<(Pem, Pem)>,
}

fn tls_error(setting: &'static str, reason: impl Into<String>) -> HttpConfigError {
    HttpConfigError::Tls {
        setting,
        reason: reason.into(),
    }
}

/// The certificates of `pem` (a file's shared with every transport that
/// names it: borrow them, see [`borrowed`]).
fn certificates(
    pem: &Pem,
    setting: &'static str,
) -> Result<Arc<[CertificateDer<'static>]>, HttpConfigError> {
    let found: Arc<[_]> = match pem {
        Pem::File(path) => crate::trust_store::pem_file(path)
            .map_err(|e| tls_error(setting, format!("{}: {e}", path.display())))?,
        Pem::Inline(bytes) => CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error(setting, format!("{pem:?}: {e}")))?
            .into(),
    };
    if found.is_empty() {
        return Err(tls_error(
            setting,
            format!("{pem:?}: no PEM certificate in it"),
        ));
    }
    Ok(found)
}

/// Views of shared certificates, for a root store that copies what it keeps.
fn borrowed<'a>(
    certs: &'a [CertificateDer<'static>],
) -> impl Iterator<Item = CertificateDer<'a>> + 'a {
    certs.iter().map(|c| CertificateDer::from(c.as_ref()))
}

fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, HttpConfigError> {
    let setting = "client_key";
    match pem {
        Pem::File(path) => PrivateKeyDer::from_pem_file(path),
        Pem::Inline(bytes) => PrivateKeyDer::from_pem_slice(bytes),
    }
    // The error names the file, never the key's bytes.
    .map_err(|e| tls_error(setting, format!("{pem:?}: {e}")))
}

impl TlsOptions {
    /// The `rustls` client configuration for these settings. `env` gives
    /// `SSL_CERT_FILE` (an extra root file, where the platform's store is
    /// used). ALPN is set by the connector.
    pub(crate) fn client_config(&self, env: &Env) -> Result<ClientConfig, HttpConfigError> {
        let mut roots = crate::trust_store::base_roots(self.roots);
        if matches!(self.roots, TlsRoots::PlatformAndWeb | TlsRoots::Platform) {
            if let Some(file) = env.get("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
                // Checked either way (a bad file is an error); the
                // process's own is in the platform's store already
                // (`rustls-native-certs` reads it), a given environment's
                // is added here.
                let pem = Pem::File(PathBuf::from(file));
                let certs = certificates(&pem, "SSL_CERT_FILE")?;
                if !matches!(env, Env::Process) {
                    roots.add_parsable_certificates(borrowed(&certs));
                }
            }
        }
        // Node's variable for extra roots, which Node-based MCP hosts tell
        // companies to set; added whatever the roots setting.
        if let Some(file) = env.get("NODE_EXTRA_CA_CERTS").filter(|f| !f.is_empty()) {
            let pem = Pem::File(PathBuf::from(file));
            for cert in borrowed(&certificates(&pem, "NODE_EXTRA_CA_CERTS")?) {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("NODE_EXTRA_CA_CERTS", format!("{pem:?}: {e}")))?;
            }
        }
        for pem in &self.extra_roots {
            for cert in borrowed(&certificates(pem, "ca_file")?) {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("ca_file", format!("{pem:?}: {e}")))?;
            }
        }
        if roots.is_empty() {
            return Err(tls_error(
                "tls_roots",
                "no certificate authority is trusted (ExtraOnly without ca_file)",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls", e.to_string()))?
            .with_root_certificates(roots);
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = certificates(cert, "client_cert")?.to_vec();
                let key = private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_error("client_cert", e.to_string()))
            }
        }
    }
}

/// The platform's and the web's roots, no client certificate (the OAuth
/// client's configuration).
#[cfg(feature = "oauth")]
pub(crate) fn default_client_config() -> ClientConfig {
    let web_only = || {
        let roots = crate::trust_store::base_roots(TlsRoots::Web);
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
    };
    match TlsOptions::default().client_config(&Env::Process) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(error = %e, "using the web's roots only");
            // The ring provider supports the default versions.
            web_only().unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        }
    }
}

/// TLS settings.
impl HttpTransportBuilder {
    /// Which trust stores to use besides the extra authorities. Default
    /// [`TlsRoots::PlatformAndWeb`]; where the platform's store is used,
    /// `SSL_CERT_FILE` (from the environment, see
    /// [`Self::environment`]) is read as an extra root file.
    /// `NODE_EXTRA_CA_CERTS` (the variable Node-based MCP hosts document for
    /// a company's authority) is always read as an extra root file.
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.tls.roots = roots;
        self
    }

    /// Also trusts the certificate authorities in this PEM file (a private
    /// authority). May be given several times; read in `build()`.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.tls
            .extra_roots
            .push(Pem::File(path.as_ref().to_path_buf()));
        self
    }

    /// Also trusts the certificate authorities in this PEM text.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.extra_roots.push(Pem::Inline(pem.into()));
        self
    }

    /// Presents this client certificate (PEM chain, leaf first) with this
    /// private key (PEM, PKCS#8, PKCS#1 or SEC1) when the server asks, for
    /// mutual TLS. Read in `build()`; the key is never logged.
    pub fn client_cert(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.tls.identity = Some((
            Pem::File(cert.as_ref().to_path_buf()),
            Pem::File(key.as_ref().to_path_buf()),
        ));
        self
    }

    /// Like [`Self::client_cert`], from PEM text.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.tls.identity = Some((Pem::Inline(cert.into()), Pem::Inline(key.into())));
        self
    }
}
