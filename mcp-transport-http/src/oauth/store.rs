//! Where tokens live between runs: [`CredentialStore`], keyed by
//! authorization server and resource, with an in-memory and a file store.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{OAuthError, Secret};

/// What a stored credential is for: one authorization server (issuer) and
/// one resource (the MCP server's URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoreKey {
    /// The authorization server's issuer.
    pub issuer: String,
    /// The MCP server's URL (without query).
    pub resource: String,
}

/// A client's identity at one authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientRegistration {
    /// The `client_id` (a URL for a Client ID Metadata Document).
    pub client_id: String,
    /// The `client_secret`, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// The redirect URI registered with it.
    pub redirect_uri: String,
    /// How it came about: `pre-registered`, `metadata-document` or `dynamic`.
    pub kind: String,
}

/// Everything kept for one [`StoreKey`]: the client identity, the tokens
/// and the endpoints needed to refresh them without discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredCredentials {
    /// The client's identity at this server.
    pub client: ClientRegistration,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The `resource` parameter sent (as the resource metadata published it).
    pub resource_indicator: String,
    /// The access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scopes granted (or requested, when the server did not say).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When this was saved (seconds since the Unix epoch).
    #[serde(default)]
    pub saved_at: u64,
}

/// Keeps credentials. Shared by every server of a pool: keys never collide
/// across servers because they name the resource.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// The credentials for `key`, if any.
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredCredentials>, OAuthError>;
    /// Every stored entry for `resource`, whatever its issuer.
    async fn for_resource(
        &self,
        resource: &str,
    ) -> Result<Vec<(StoreKey, StoredCredentials)>, OAuthError>;
    /// Saves (replaces) the credentials for `key`.
    async fn save(&self, key: &StoreKey, credentials: &StoredCredentials)
        -> Result<(), OAuthError>;
    /// Forgets `key`.
    async fn remove(&self, key: &StoreKey) -> Result<(), OAuthError>;
}

/// Credentials in memory only: gone when the process ends.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    entries: Arc<Mutex<HashMap<StoreKey, StoredCredentials>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredCredentials>, OAuthError> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(entries.get(key).cloned())
    }

    async fn for_resource(
        &self,
        resource: &str,
    ) -> Result<Vec<(StoreKey, StoredCredentials)>, OAuthError> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(entries
            .iter()
            .filter(|(k, _)| k.resource == resource)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn save(
        &self,
        key: &StoreKey,
        credentials: &StoredCredentials,
    ) -> Result<(), OAuthError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.insert(key.clone(), credentials.clone());
        Ok(())
    }

    async fn remove(&self, key: &StoreKey) -> Result<(), OAuthError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
        Ok(())
    }
}

/// Credentials in one JSON file, readable and writable by its owner only
/// (mode 0600 on Unix), replaced atomically (a temporary file in the same
/// directory, flushed, then renamed over it) so that a crash never leaves a
/// half-written file.
#[derive(Clone)]
pub struct FileStore {
    path: Arc<PathBuf>,
    /// Serialises read-modify-write cycles within this process.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct FileContents {
    version: u32,
    #[serde(default)]
    entries: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    key: StoreKey,
    credentials: StoredCredentials,
}

impl FileStore {
    /// A store in the file at `path` (created on the first save, with its
    /// directory).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore {
            path: Arc::new(path.into()),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: &str, e: impl std::error::Error + Send + Sync + 'static) -> OAuthError {
        OAuthError::Store {
            location: self.path.display().to_string(),
            reason: format!("{reason}: {e}"),
            source: Some(Box::new(e)),
        }
    }

    fn read(&self) -> Result<FileContents, OAuthError> {
        match std::fs::read(&*self.path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| self.error("not a credential file", e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileContents {
                version: 1,
                entries: Vec::new(),
            }),
            Err(e) => Err(self.error("cannot read", e)),
        }
    }

    fn write(&self, contents: &FileContents) -> Result<(), OAuthError> {
        use std::io::Write;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.error("cannot create its directory", e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "credentials".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
        let bytes =
            serde_json::to_vec_pretty(contents).map_err(|e| self.error("cannot serialise", e))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let result = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &*self.path)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(self.error("cannot write", e));
        }
        Ok(())
    }

    async fn modify(
        &self,
        change: impl FnOnce(&mut Vec<FileEntry>) + Send + 'static,
    ) -> Result<(), OAuthError> {
        let _guard = self.lock.lock().await;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut contents = this.read()?;
            contents.version = 1;
            change(&mut contents.entries);
            this.write(&contents)
        })
        .await
        .map_err(|e| self.error("store task failed", e))?
    }

    async fn entries(&self) -> Result<Vec<FileEntry>, OAuthError> {
        let _guard = self.lock.lock().await;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read().map(|c| c.entries))
            .await
            .map_err(|e| self.error("store task failed", e))?
    }
}

#[async_trait]
impl CredentialStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredCredentials>, OAuthError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .find(|e| &e.key == key)
            .map(|e| e.credentials))
    }

    async fn for_resource(
        &self,
        resource: &str,
    ) -> Result<Vec<(StoreKey, StoredCredentials)>, OAuthError> {
        Ok(self
            .entries()
            .await?
            .into_iter()
            .filter(|e| e.key.resource == resource)
            .map(|e| (e.key, e.credentials))
            .collect())
    }

    async fn save(
        &self,
        key: &StoreKey,
        credentials: &StoredCredentials,
    ) -> Result<(), OAuthError> {
        let (key, credentials) = (key.clone(), credentials.clone());
        self.modify(move |entries| {
            entries.retain(|e| e.key != key);
            entries.push(FileEntry { key, credentials });
        })
        .await
    }

    async fn remove(&self, key: &StoreKey) -> Result<(), OAuthError> {
        let key = key.clone();
        self.modify(move |entries| entries.retain(|e| e.key != key))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(token: &str) -> StoredCredentials {
        StoredCredentials {
            client: ClientRegistration {
                client_id: "c".into(),
                client_secret: Some(Secret::new("client-secret-1")),
                token_endpoint_auth_method: "client_secret_basic".into(),
                redirect_uri: "http://127.0.0.1:1/callback".into(),
                kind: "dynamic".into(),
            },
            authorization_endpoint: "https://as/authorize".into(),
            token_endpoint: "https://as/token".into(),
            resource_indicator: "https://mcp/mcp".into(),
            access_token: Some(Secret::new(token)),
            refresh_token: Some(Secret::new("refresh-1")),
            expires_at: Some(1),
            scopes: vec!["a".into()],
            saved_at: 0,
        }
    }

    #[tokio::test]
    async fn file_store_round_trip_is_private_and_atomic() {
        let dir = std::env::temp_dir().join(format!("mcp-oauth-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join("tokens.json");
        let store = FileStore::new(&path);
        let key = StoreKey {
            issuer: "https://as".into(),
            resource: "https://mcp/mcp".into(),
        };
        assert_eq!(store.load(&key).await.expect("empty"), None);
        store.save(&key, &creds("access-1")).await.expect("saved");
        store.save(&key, &creds("access-2")).await.expect("saved");
        let again = FileStore::new(&path);
        let got = again.load(&key).await.expect("loads").expect("present");
        assert_eq!(got.access_token, Some(Secret::new("access-2")));
        assert_eq!(
            again
                .for_resource("https://mcp/mcp")
                .await
                .expect("ok")
                .len(),
            1
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("lists")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        again.remove(&key).await.expect("removed");
        assert_eq!(store.load(&key).await.expect("ok"), None);
        let debug = format!("{got:?}");
        for secret in ["access-2", "refresh-1", "client-secret-1"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        std::fs::write(&path, b"{not json").expect("writes");
        assert!(matches!(
            store.load(&key).await,
            Err(OAuthError::Store { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
