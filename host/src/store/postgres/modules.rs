//! PostgreSQL: the module registry every replica reads, and the
//! notifications that tell replicas it changed.
//!
//! Every change (a new version, a rollback, a shadow set or cleared) is one
//! transaction that ends with `NOTIFY switchboard_modules, '<tenant>'`;
//! each replica listens ([`Postgres::listen`]) and brings that tenant's
//! registry up to date from these tables.

use super::{Postgres, Queries, Tx};
use crate::runtime::registry::{ModuleStore, Persisted, ShadowInfo, VersionInfo};
use crate::store::StoreError;
use postgres::fallible_iterator::FallibleIterator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The channel module changes are announced on; the payload is the tenant.
pub const MODULES_CHANNEL: &str = "switchboard_modules";

fn io(e: StoreError) -> std::io::Error {
    std::io::Error::other(e)
}

fn notify(tx: &mut Tx<'_>, tenant: &str) -> Result<(), postgres::Error> {
    tx.execute("SELECT pg_notify($1, $2)", &[&MODULES_CHANNEL, &tenant])
        .map(drop)
}

/// Serialises changes to one tenant's registry across replicas.
fn lock_tenant(tx: &mut Tx<'_>, tenant: &str) -> Result<(), postgres::Error> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('modules:' || $1, 0))",
        &[&tenant],
    )
    .map(drop)
}

fn version_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

impl ModuleStore for Postgres {
    fn add_version(
        &self,
        tenant: &str,
        digest: &str,
        source: &str,
        bytes: &[u8],
    ) -> std::io::Result<VersionInfo> {
        const OP: &str = "record module version";
        self.with(OP, |c| {
            let q = |e| StoreError::query(OP, e);
            let mut tx = c.transaction().map_err(q)?;
            lock_tenant(&mut tx, tenant).map_err(q)?;
            let live = tx
                .query_opt(
                    "SELECT v.version, v.digest, v.source, v.deployed_at
                     FROM module_live l
                     JOIN module_versions v ON v.tenant = l.tenant AND v.version = l.version
                     WHERE l.tenant = $1",
                    &[&tenant],
                )
                .map_err(q)?;
            if let Some(row) = live {
                let live_digest: String = row.get(1);
                if live_digest == digest {
                    return Ok(VersionInfo {
                        version: version_of(row.get(0)),
                        digest: live_digest,
                        source: row.get(2),
                        deployed_at: row.get(3),
                    });
                }
            }
            tx.execute(
                "INSERT INTO module_blobs (tenant, digest, bytes) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, digest) DO NOTHING",
                &[&tenant, &digest, &bytes],
            )
            .map_err(q)?;
            let next: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM module_versions WHERE tenant = $1",
                    &[&tenant],
                )
                .map_err(q)?
                .get(0);
            let deployed_at =
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            tx.execute(
                "INSERT INTO module_versions (tenant, version, digest, source, deployed_at)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&tenant, &next, &digest, &source, &deployed_at],
            )
            .map_err(q)?;
            tx.execute(
                "INSERT INTO module_live (tenant, version) VALUES ($1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET version = excluded.version",
                &[&tenant, &next],
            )
            .map_err(q)?;
            notify(&mut tx, tenant).map_err(q)?;
            tx.commit().map_err(q)?;
            Ok(VersionInfo {
                version: version_of(next),
                digest: digest.to_string(),
                source: source.to_string(),
                deployed_at,
            })
        })
        .map_err(io)
    }

    fn set_live(&self, tenant: &str, version: u32) -> std::io::Result<()> {
        const OP: &str = "set live module";
        let version = i32::try_from(version).map_err(std::io::Error::other)?;
        self.with(OP, |c| {
            let q = |e| StoreError::query(OP, e);
            let mut tx = c.transaction().map_err(q)?;
            lock_tenant(&mut tx, tenant).map_err(q)?;
            let changed = tx
                .execute(
                    "INSERT INTO module_live (tenant, version)
                     SELECT tenant, version FROM module_versions
                     WHERE tenant = $1 AND version = $2
                     ON CONFLICT (tenant) DO UPDATE SET version = excluded.version",
                    &[&tenant, &version],
                )
                .map_err(q)?;
            if changed == 0 {
                return Err(StoreError::query(
                    OP,
                    format!("version {version} of `{tenant}` is not recorded"),
                ));
            }
            notify(&mut tx, tenant).map_err(q)?;
            tx.commit().map_err(q)
        })
        .map_err(io)
    }

    fn set_shadow(
        &self,
        tenant: &str,
        shadow: Option<(&ShadowInfo, &[u8])>,
    ) -> std::io::Result<()> {
        const OP: &str = "set shadow module";
        self.with(OP, |c| {
            let q = |e| StoreError::query(OP, e);
            let mut tx = c.transaction().map_err(q)?;
            lock_tenant(&mut tx, tenant).map_err(q)?;
            match shadow {
                Some((info, bytes)) => {
                    tx.execute(
                        "INSERT INTO module_blobs (tenant, digest, bytes) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant, digest) DO NOTHING",
                        &[&tenant, &info.digest, &bytes],
                    )
                    .map_err(q)?;
                    tx.execute(
                        "INSERT INTO module_shadow (tenant, digest, source, since)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (tenant) DO UPDATE
                         SET digest = excluded.digest, source = excluded.source,
                             since = excluded.since",
                        &[&tenant, &info.digest, &info.source, &info.since],
                    )
                    .map_err(q)?;
                }
                None => {
                    tx.execute("DELETE FROM module_shadow WHERE tenant = $1", &[&tenant])
                        .map_err(q)?;
                }
            }
            notify(&mut tx, tenant).map_err(q)?;
            tx.commit().map_err(q)
        })
        .map_err(io)
    }

    fn tenants(&self) -> std::io::Result<Vec<String>> {
        const OP: &str = "list module tenants";
        self.with(OP, |c| {
            c.query("SELECT tenant FROM module_live ORDER BY tenant", &[])
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .map_err(|e| StoreError::query(OP, e))
        })
        .map_err(io)
    }

    fn load(&self, tenant: &str) -> std::io::Result<Option<Persisted>> {
        const OP: &str = "read module registry";
        self.with(OP, |c| {
            let q = |e| StoreError::query(OP, e);
            // One snapshot for the three reads.
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(q)?;
            let Some(live) = tx
                .query_opt(
                    "SELECT version FROM module_live WHERE tenant = $1",
                    &[&tenant],
                )
                .map_err(q)?
            else {
                return Ok(None);
            };
            let versions = tx
                .query(
                    "SELECT version, digest, source, deployed_at FROM module_versions
                     WHERE tenant = $1 ORDER BY version",
                    &[&tenant],
                )
                .map_err(q)?
                .iter()
                .map(|r| VersionInfo {
                    version: version_of(r.get(0)),
                    digest: r.get(1),
                    source: r.get(2),
                    deployed_at: r.get(3),
                })
                .collect();
            let shadow = tx
                .query_opt(
                    "SELECT digest, source, since FROM module_shadow WHERE tenant = $1",
                    &[&tenant],
                )
                .map_err(q)?
                .map(|r| ShadowInfo {
                    digest: r.get(0),
                    source: r.get(1),
                    since: r.get(2),
                });
            tx.commit().map_err(q)?;
            Ok(Some(Persisted {
                versions,
                live: version_of(live.get(0)),
                shadow,
            }))
        })
        .map_err(io)
    }

    fn bytes(&self, tenant: &str, digest: &str) -> std::io::Result<Vec<u8>> {
        const OP: &str = "read module bytes";
        self.with(OP, |c| {
            c.query_opt(
                "SELECT bytes FROM module_blobs WHERE tenant = $1 AND digest = $2",
                &[&tenant, &digest],
            )
            .map_err(|e| StoreError::query(OP, e))?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::query(OP, format!("no module {digest} for `{tenant}`")))
        })
        .map_err(io)
    }
}

/// Stops a listener thread when dropped.
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Postgres {
    /// Listens on `channel` from a thread with a connection of its own and
    /// calls `on(Some(payload))` for each notification. After the connection
    /// was lost and is back, it calls `on(None)`: notifications may have
    /// been missed, so the caller re-reads everything. Stops when the
    /// returned [`Listener`] is dropped (within a second).
    pub fn listen(
        &self,
        channel: &'static str,
        on: impl Fn(Option<&str>) + Send + 'static,
    ) -> Result<Listener, StoreError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let config = self.config.clone();
        let shown_url = self.display.clone();
        std::thread::Builder::new()
            .name(format!("listen-{channel}"))
            .spawn(move || {
                let mut lost = false;
                while !flag.load(Ordering::Acquire) {
                    let mut client = match config.connect(postgres::NoTls) {
                        Ok(client) => client,
                        Err(error) => {
                            if !std::mem::replace(&mut lost, true) {
                                tracing::warn!(url = %shown_url, %error, channel, "cannot listen for notifications; retrying");
                            }
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    };
                    if let Err(error) = client.batch_execute(&format!("LISTEN {channel}")) {
                        tracing::warn!(%error, channel, "LISTEN failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                    if std::mem::take(&mut lost) {
                        tracing::info!(channel, "listening for notifications again");
                        on(None);
                    }
                    while !flag.load(Ordering::Acquire) {
                        let next = {
                            let mut notifications = client.notifications();
                            let mut waiting = notifications.timeout_iter(Duration::from_millis(500));
                            waiting.next().map(|n| n.map(|n| n.payload().to_string()))
                        };
                        match next {
                            Ok(Some(payload)) => on(Some(&payload)),
                            Ok(None) => {
                                if client.is_closed() {
                                    lost = true;
                                    break;
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%error, channel, "notification connection lost");
                                lost = true;
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        Ok(Listener { stop })
    }
}
