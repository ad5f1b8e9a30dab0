//! SQLite: one process owns the file, so it holds every lease.

use super::Sqlite;
use crate::store::coordination::{Coordination, ReplicaInfo};
use crate::store::StoreError;

impl Coordination for Sqlite {
    fn replica(&self) -> &str {
        &self.replica
    }

    fn lease_customer(&self, _tenant: &str, _customer_key: &str) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn release_customer(&self, _tenant: &str, _customer_key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn lead(&self, _tenant: &str, _role: &str) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn lease_valid(&self) -> bool {
        true
    }

    fn replicas(&self) -> Result<Vec<ReplicaInfo>, StoreError> {
        Ok(vec![ReplicaInfo {
            id: self.replica.clone(),
            started_at: self.started_at.clone(),
            last_seen_ms: 0,
            alive: true,
            customers: 0,
        }])
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(|e| StoreError::query("ping", e))
    }
}
