//! TLS settings: which authorities are trusted (the platform's store, the
//! web's roots, extra PEM files), the client certificate for mutual TLS, and
//! the `rustls` client configuration made from them once, in `build()`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::Mutex;

use rustls::{ClientConfig, RootCertStore};
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

/// The platform's trust store, read and parsed once per process: reading
/// and parsing it takes tens of milliseconds, which a pool of many HTTP
/// servers would otherwise pay for each one (a store changed while the
/// process runs is seen by the next process).
fn platform_roots() -> &'static RootCertStore {
    static PLATFORM: OnceLock<RootCertStore> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "could not read part of the platform's trust store");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "platform trust store");
        roots
    })
}

/// The authorities `roots` names, before any extra one (made once per
/// process and kind).
fn base_roots(roots: TlsRoots) -> RootCertStore {
    static BOTH: OnceLock<RootCertStore> = OnceLock::new();
    static WEB: OnceLock<RootCertStore> = OnceLock::new();
    let web = || webpki_roots::TLS_SERVER_ROOTS.iter().cloned();
    match roots {
        TlsRoots::PlatformAndWeb => BOTH
            .get_or_init(|| {
                let mut both = platform_roots().clone();
                both.extend(web());
                both
            })
            .clone(),
        TlsRoots::Platform => platform_roots().clone(),
        TlsRoots::Web => WEB
            .get_or_init(|| RootCertStore {
                roots: web().collect(),
            })
            .clone(),
        TlsRoots::ExtraOnly => RootCertStore::empty(),
    }
}

fn tls_error(setting: &'static str, reason: impl Into<String>) -> HttpConfigError {
    HttpConfigError::Tls {
        setting,
        reason: reason.into(),
    }
}

/// Certificates read from PEM files, kept by path while the file's size
/// and modification time stay the same: many transports given the same
/// bundle (a `ca_file`, `NODE_EXTRA_CA_CERTS`) decode it once.
type FileCache = HashMap<PathBuf, (u64, Option<SystemTime>, Arc<[CertificateDer<'static>]>)>;

fn pem_file(path: &Path) -> Result<Arc<[CertificateDer<'static>]>, String> {
    static FILES: OnceLock<Mutex<FileCache>> = OnceLock::new();
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let stamp = (meta.len(), meta.modified().ok());
    let files = FILES.get_or_init(Mutex::default);
    if let Some((len, modified, certs)) = files.lock().get(path) {
        if (*len, *modified) == stamp {
            return Ok(certs.clone());
        }
    }
    // Read without the lock held.
    let certs: Arc<[CertificateDer<'static>]> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?
        .into();
    files
        .lock()
        .insert(path.to_path_buf(), (stamp.0, stamp.1, certs.clone()));
    Ok(certs)
}

fn certificates(
    pem: &Pem,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>, HttpConfigError> {
    let found: Vec<_> = match pem {
        Pem::File(path) => pem_file(path)
            .map_err(|e| tls_error(setting, format!("{}: {e}", path.display())))?
            .to_vec(),
        Pem::Inline(bytes) => CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error(setting, format!("{pem:?}: {e}")))?,
    };
    if found.is_empty() {
        return Err(tls_error(
            setting,
            format!("{pem:?}: no PEM certificate in it"),
        ));
    }
    Ok(found)
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
        let mut roots = base_roots(self.roots);
        // `rustls-native-certs` read the process's `SSL_CERT_FILE` with the
        // platform's store; a given environment's is read here.
        if matches!(self.roots, TlsRoots::PlatformAndWeb | TlsRoots::Platform)
            && !matches!(env, Env::Process)
        {
            if let Some(file) = env.get("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
                let pem = Pem::File(PathBuf::from(file));
                roots.add_parsable_certificates(certificates(&pem, "SSL_CERT_FILE")?);
            }
        }
        // Node's variable for extra roots, which Node-based MCP hosts tell
        // companies to set; added whatever the roots setting.
        if let Some(file) = env.get("NODE_EXTRA_CA_CERTS").filter(|f| !f.is_empty()) {
            let pem = Pem::File(PathBuf::from(file));
            for cert in certificates(&pem, "NODE_EXTRA_CA_CERTS")? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("NODE_EXTRA_CA_CERTS", format!("{pem:?}: {e}")))?;
            }
        }
        for pem in &self.extra_roots {
            for cert in certificates(pem, "ca_file")? {
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
                let chain = certificates(cert, "client_cert")?;
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
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
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
