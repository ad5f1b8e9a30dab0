//! Mirrored customers and conversations as the process last parsed them,
//! each beside the version of the stored body it was parsed from (see
//! `crate::store::mirror`). A row of the kept version gives the kept copy
//! without its body being read or parsed; a row of any other version is
//! parsed (and kept in its place), so the store's row always decides and a
//! stale copy is never used. Another replica's write, a webhook, or an
//! older copy the store refused all leave the versions different.
//!
//! Bounded: at most [`KEPT`] copies of each kind; when full, all are
//! forgotten at once (the next reads parse again).
use crate::connectors::kustomer::model::{Conversation, Customer};
use crate::store::Mirrored;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

/// Copies kept per kind.
pub(super) const KEPT: usize = 2_048;

pub(super) static CUSTOMERS: LazyLock<Parsed<Customer>> = LazyLock::new(Parsed::default);
pub(super) static CONVERSATIONS: LazyLock<Parsed<Conversation>> = LazyLock::new(Parsed::default);

/// A version for a body about to be stored: random and never 0, which
/// marks rows stored before bodies had versions.
pub(super) fn new_version() -> i64 {
    loop {
        let version = rand::random::<i64>();
        if version != 0 {
            return version;
        }
    }
}

/// Parsed copies by tenant and id.
pub(super) struct Parsed<T> {
    kept: Mutex<HashMap<String, Kept<T>>>,
}

struct Kept<T> {
    version: i64,
    parsed: Arc<T>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Self {
            kept: Mutex::new(HashMap::new()),
        }
    }
}

fn key(tenant: &str, id: &str) -> String {
    let mut key = String::with_capacity(tenant.len() + 1 + id.len());
    key.push_str(tenant);
    // Tenant ids are names without control characters.
    key.push('\u{1f}');
    key.push_str(id);
    key
}

impl<T: DeserializeOwned> Parsed<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Kept<T>>> {
        // A panic elsewhere cannot leave a half-written entry: each is
        // replaced whole.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The kept copy of `id` if it is of `version` (never for version 0).
    pub(super) fn get(&self, tenant: &str, id: &str, version: i64) -> Option<Arc<T>> {
        if version == 0 {
            return None;
        }
        self.lock()
            .get(&key(tenant, id))
            .filter(|kept| kept.version == version)
            .map(|kept| kept.parsed.clone())
    }

    /// The row's resource: the kept copy if it is of the row's version,
    /// else parsed now. `None` when the body is not a `T`.
    pub(super) fn read(&self, tenant: &str, row: Mirrored) -> Option<Arc<T>> {
        if let Some(kept) = self.get(tenant, &row.id, row.version) {
            return Some(kept);
        }
        let parsed = Arc::new(serde_json::from_str::<T>(&row.body).ok()?);
        if row.version != 0 {
            self.put(key(tenant, &row.id), row.version, parsed.clone());
        }
        Some(parsed)
    }

    /// Keeps `parsed`, stored under `version`, for `tenant`.
    pub(super) fn keep(&self, tenant: &str, version: i64, parsed: T) -> Arc<T>
    where
        T: Identified,
    {
        let parsed = Arc::new(parsed);
        self.put(key(tenant, parsed.id()), version, parsed.clone());
        parsed
    }

    fn put(&self, key: String, version: i64, parsed: Arc<T>) {
        let mut kept = self.lock();
        if kept.len() >= KEPT && !kept.contains_key(&key) {
            kept.clear();
        }
        kept.insert(key, Kept { version, parsed });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A resource's id, which its copy is kept under.
pub(super) trait Identified {
    fn id(&self) -> &str;
}

impl<A> Identified for crate::connectors::kustomer::model::Resource<A> {
    fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conversation(id: &str, status: &str) -> (Conversation, String) {
        let value = json!({
            "type": "conversation",
            "id": id,
            "attributes": { "status": status },
            "relationships": { "customer": { "data": { "type": "customer", "id": "c1" } } }
        });
        let parsed: Conversation = serde_json::from_value(value).expect("conversation");
        let text = serde_json::to_string(&parsed).expect("text");
        (parsed, text)
    }

    fn row(id: &str, body: &str, version: i64) -> Mirrored {
        Mirrored {
            id: id.into(),
            body: body.into(),
            version,
            seen_at_ms: 0,
        }
    }

    #[test]
    fn ku2_a_row_of_the_kept_version_gives_the_kept_copy_and_any_other_is_parsed() {
        let memo = Parsed::<Conversation>::default();
        let (open, open_text) = conversation("v1", "open");
        let kept = memo.keep("acme", 7, open);
        let again = memo.read("acme", row("v1", &open_text, 7)).expect("read");
        assert!(
            Arc::ptr_eq(&kept, &again),
            "the same version is not parsed again"
        );
        assert!(Arc::ptr_eq(
            &kept,
            &memo.get("acme", "v1", 7).expect("by version alone")
        ));

        // The store now holds another version (a webhook, another replica):
        // that is what is read, never the kept copy.
        let (_, done_text) = conversation("v1", "done");
        assert!(memo.get("acme", "v1", 8).is_none());
        let read = memo.read("acme", row("v1", &done_text, 8)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("done"));
        assert!(!Arc::ptr_eq(&kept, &read));
        assert!(Arc::ptr_eq(
            &read,
            &memo.get("acme", "v1", 8).expect("kept in its place")
        ));
        // Another tenant's conversation of the same id is its own.
        assert!(memo.get("globex", "v1", 8).is_none());
        assert!(memo.read("globex", row("v1", "not json", 8)).is_none());
        // A row from before versions is parsed every time, never kept.
        let read = memo.read("acme", row("v1", &open_text, 0)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("open"));
        assert!(memo.get("acme", "v1", 0).is_none());
    }

    #[test]
    fn ku2_new_versions_are_never_the_unknown_one() {
        assert!((0..10_000).all(|_| new_version() != 0));
    }

    #[test]
    fn ku2_the_kept_copies_stay_bounded() {
        let memo = Parsed::<Conversation>::default();
        for i in 0..(KEPT * 2 + 10) {
            let id = format!("v{i}");
            let (c, _) = conversation(&id, "open");
            memo.keep("acme", 1, c);
            assert!(memo.len() <= KEPT);
        }
        let (c, text) = conversation("v-last", "snoozed");
        memo.keep("acme", 2, c);
        let read = memo.read("acme", row("v-last", &text, 2)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("snoozed"));
    }
}
