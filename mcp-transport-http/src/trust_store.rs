//! Trust material read once and shared by every transport of the process:
//! the platform's store (and the web roots merged with it) and the
//! certificates of PEM files. Reading and decoding them takes milliseconds,
//! which a pool of many HTTP servers would otherwise pay for each one.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::tls::TlsRoots;

/// The platform's store as read for the process's `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` (which `rustls-native-certs` reads instead of the
/// platform's own locations when set).
struct Platform {
    env: (Option<OsString>, Option<OsString>),
    alone: RootCertStore,
    with_web: RootCertStore,
}

fn web() -> impl Iterator<Item = rustls::pki_types::TrustAnchor<'static>> {
    webpki_roots::TLS_SERVER_ROOTS.iter().cloned()
}

/// The platform's store, read again only when the process's
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` change (a store changed on disk while the
/// process runs is seen by the next process).
fn platform() -> Arc<Platform> {
    static CACHE: Mutex<Option<Arc<Platform>>> = Mutex::new(None);
    let env = (
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    );
    if let Some(cached) = CACHE.lock().as_ref().filter(|p| p.env == env) {
        return cached.clone();
    }
    // Read without the lock held.
    let mut alone = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "could not read part of the platform's trust store");
    }
    let (added, ignored) = alone.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "platform trust store");
    let mut with_web = alone.clone();
    with_web.extend(web());
    let platform = Arc::new(Platform {
        env,
        alone,
        with_web,
    });
    *CACHE.lock() = Some(platform.clone());
    platform
}

/// The authorities `roots` names, before any extra one.
pub(crate) fn base_roots(roots: TlsRoots) -> RootCertStore {
    static WEB: OnceLock<RootCertStore> = OnceLock::new();
    match roots {
        TlsRoots::PlatformAndWeb => platform().with_web.clone(),
        TlsRoots::Platform => platform().alone.clone(),
        TlsRoots::Web => WEB
            .get_or_init(|| RootCertStore {
                roots: web().collect(),
            })
            .clone(),
        TlsRoots::ExtraOnly => RootCertStore::empty(),
    }
}

/// What identifies a file's contents without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file may still change within its clock tick unseen: a
    /// file modified this recently is not kept (as git does for its index).
    fn is_racy(&self) -> bool {
        self.modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .map_or(true, |age| age < Duration::from_secs(2))
    }
}

type FileCache = HashMap<PathBuf, (Stamp, Arc<[CertificateDer<'static>]>)>;

/// The certificates of a PEM file, decoded once while the file stays the
/// same (its size, times and inode): many transports given the same bundle
/// (a `ca_file`, `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`) decode it once.
/// The error reads as the PEM reader's.
pub(crate) fn pem_file(path: &Path) -> Result<Arc<[CertificateDer<'static>]>, String> {
    static FILES: OnceLock<Mutex<FileCache>> = OnceLock::new();
    let io = |e: std::io::Error| rustls_pki_types::pem::Error::Io(e).to_string();
    let stamp = Stamp::of(&std::fs::metadata(path).map_err(io)?);
    let files = FILES.get_or_init(Mutex::default);
    if let Some((seen, certs)) = files.lock().get(path) {
        if *seen == stamp {
            return Ok(certs.clone());
        }
    }
    // Read without the lock held.
    let certs: Arc<[CertificateDer<'static>]> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?
        .into();
    let mut files = files.lock();
    if stamp.is_racy() {
        files.remove(path);
    } else {
        files.insert(path.to_path_buf(), (stamp, certs.clone()));
    }
    Ok(certs)
}
