//! Where a registry keeps its modules: a directory (one process), or a
//! database shared by replicas (implemented by the store).
//!
//! The persisted record is the truth; a registry's memory is a compiled
//! copy of it, brought up to date by [`super::Registry::sync_tenant`].
use super::{ShadowInfo, VersionInfo};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What is persisted of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// The live version's number.
    pub live: u32,
    /// The shadow module, if one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowInfo>,
}

/// A persistence of rule modules.
pub trait ModuleStore: Send + Sync {
    /// Records `bytes` as the next version of `tenant` and makes it live,
    /// numbering it after every version recorded so far. If the live version
    /// already has this digest (another replica deployed the same bytes
    /// meanwhile), records nothing and returns the live version.
    fn add_version(
        &self,
        tenant: &str,
        digest: &str,
        source: &str,
        bytes: &[u8],
    ) -> std::io::Result<VersionInfo>;

    /// Makes a recorded version live.
    fn set_live(&self, tenant: &str, version: u32) -> std::io::Result<()>;

    /// Sets (or clears, with `None`) the tenant's shadow module.
    fn set_shadow(&self, tenant: &str, shadow: Option<(&ShadowInfo, &[u8])>)
        -> std::io::Result<()>;

    /// Every tenant with a live version.
    fn tenants(&self) -> std::io::Result<Vec<String>>;

    /// What is recorded of one tenant; `None` if it has no live version.
    fn load(&self, tenant: &str) -> std::io::Result<Option<Persisted>>;

    /// The bytes of one module of `tenant`.
    fn bytes(&self, tenant: &str, digest: &str) -> std::io::Result<Vec<u8>>;
}

/// The time a version or shadow is recorded, as RFC 3339.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Modules in a directory: `<tenant>/registry.json` (versions, live, shadow)
/// and `<tenant>/<digest>.wasm`, each written aside and renamed. One
/// process owns the directory.
#[derive(Debug, Clone)]
pub struct DirModules {
    dir: PathBuf,
}

impl DirModules {
    /// Modules kept under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn manifest_path(&self, tenant: &str) -> PathBuf {
        self.dir.join(tenant).join("registry.json")
    }

    fn read(&self, tenant: &str) -> std::io::Result<Option<Persisted>> {
        let mut persisted: Persisted = match std::fs::read(self.manifest_path(tenant)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // Directories written before the shadow joined the manifest keep
        // it in a file of its own.
        let legacy = self.dir.join(tenant).join("shadow.json");
        if persisted.shadow.is_none() && legacy.is_file() {
            persisted.shadow = Some(
                serde_json::from_slice(&std::fs::read(&legacy)?).map_err(std::io::Error::other)?,
            );
            std::fs::remove_file(legacy)?;
            self.write(tenant, &persisted)?;
        }
        Ok(Some(persisted))
    }

    fn write(&self, tenant: &str, persisted: &Persisted) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(persisted).map_err(std::io::Error::other)?;
        write_atomic(&self.manifest_path(tenant), &json)
    }

    fn write_module(&self, tenant: &str, digest: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(tenant);
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join(format!("{digest}.wasm")), bytes)
    }
}

impl ModuleStore for DirModules {
    fn add_version(
        &self,
        tenant: &str,
        digest: &str,
        source: &str,
        bytes: &[u8],
    ) -> std::io::Result<VersionInfo> {
        let mut persisted = self.read(tenant)?.unwrap_or_default();
        if let Some(live) = persisted
            .versions
            .iter()
            .find(|v| v.version == persisted.live)
        {
            if live.digest == digest {
                return Ok(live.clone());
            }
        }
        self.write_module(tenant, digest, bytes)?;
        let info = VersionInfo {
            version: persisted.versions.last().map_or(1, |v| v.version + 1),
            digest: digest.to_string(),
            source: source.to_string(),
            deployed_at: now(),
        };
        persisted.versions.push(info.clone());
        persisted.live = info.version;
        self.write(tenant, &persisted)?;
        Ok(info)
    }

    fn set_live(&self, tenant: &str, version: u32) -> std::io::Result<()> {
        let mut persisted = self.read(tenant)?.unwrap_or_default();
        if !persisted.versions.iter().any(|v| v.version == version) {
            return Err(std::io::Error::other(format!(
                "version {version} of `{tenant}` is not recorded"
            )));
        }
        persisted.live = version;
        self.write(tenant, &persisted)
    }

    fn set_shadow(
        &self,
        tenant: &str,
        shadow: Option<(&ShadowInfo, &[u8])>,
    ) -> std::io::Result<()> {
        let mut persisted = self.read(tenant)?.unwrap_or_default();
        if let Some((info, bytes)) = shadow {
            self.write_module(tenant, &info.digest, bytes)?;
        }
        persisted.shadow = shadow.map(|(info, _)| info.clone());
        self.write(tenant, &persisted)
    }

    fn tenants(&self) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut tenants: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("registry.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        tenants.sort();
        Ok(tenants)
    }

    fn load(&self, tenant: &str) -> std::io::Result<Option<Persisted>> {
        Ok(self.read(tenant)?.filter(|p| p.live > 0))
    }

    fn bytes(&self, tenant: &str, digest: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(tenant).join(format!("{digest}.wasm")))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}
