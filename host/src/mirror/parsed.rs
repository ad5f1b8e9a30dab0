//! Mirrored customers and conversations as the process last parsed them,
//! each beside the JSON text it was parsed from. Reading a row whose text is
//! the one kept gives the kept copy; any other text is parsed (and kept in
//! its place), so the store's row always decides and a stale copy is never
//! used. Another replica's write, a webhook, or an older copy the store
//! refused all leave the texts different.
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

/// Parsed copies by tenant and id.
pub(super) struct Parsed<T> {
    kept: Mutex<HashMap<String, Kept<T>>>,
}

struct Kept<T> {
    text: String,
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

    /// The row's resource: the kept copy if it was parsed from the same
    /// text, else parsed now. `None` when the text is not a `T`.
    pub(super) fn read(&self, tenant: &str, row: Mirrored) -> Option<Arc<T>> {
        let key = key(tenant, &row.id);
        if let Some(kept) = self.lock().get(&key) {
            if kept.text == row.body {
                return Some(kept.parsed.clone());
            }
        }
        let parsed = Arc::new(serde_json::from_str::<T>(&row.body).ok()?);
        self.put(key, row.body, parsed.clone());
        Some(parsed)
    }

    /// Keeps `parsed`, which `text` is the JSON of, for `tenant`.
    pub(super) fn keep(&self, tenant: &str, text: String, parsed: T) -> Arc<T>
    where
        T: Identified,
    {
        let parsed = Arc::new(parsed);
        self.put(key(tenant, parsed.id()), text, parsed.clone());
        parsed
    }

    fn put(&self, key: String, text: String, parsed: Arc<T>) {
        let mut kept = self.lock();
        if kept.len() >= KEPT && !kept.contains_key(&key) {
            kept.clear();
        }
        kept.insert(key, Kept { text, parsed });
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

    fn row(id: &str, body: &str) -> Mirrored {
        Mirrored {
            id: id.into(),
            body: body.into(),
            seen_at_ms: 0,
        }
    }

    #[test]
    fn ku2_a_row_with_the_kept_text_gives_the_kept_copy_and_any_other_text_is_parsed() {
        let memo = Parsed::<Conversation>::default();
        let (open, open_text) = conversation("v1", "open");
        let kept = memo.keep("acme", open_text.clone(), open);
        let again = memo.read("acme", row("v1", &open_text)).expect("read");
        assert!(
            Arc::ptr_eq(&kept, &again),
            "the same text is not parsed again"
        );

        // The store now holds another text (a webhook, another replica):
        // that is what is read, never the kept copy.
        let (_, done_text) = conversation("v1", "done");
        let read = memo.read("acme", row("v1", &done_text)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("done"));
        assert!(!Arc::ptr_eq(&kept, &read));
        // Another tenant's conversation of the same id is its own.
        assert!(memo.read("globex", row("v1", "not json")).is_none());
        let read = memo.read("acme", row("v1", &done_text)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("done"));
    }

    #[test]
    fn ku2_the_kept_copies_stay_bounded() {
        let memo = Parsed::<Conversation>::default();
        for i in 0..(KEPT * 2 + 10) {
            let id = format!("v{i}");
            let (c, text) = conversation(&id, "open");
            memo.keep("acme", text, c);
            assert!(memo.len() <= KEPT);
        }
        let (c, text) = conversation("v-last", "snoozed");
        memo.keep("acme", text.clone(), c);
        let read = memo.read("acme", row("v-last", &text)).expect("read");
        assert_eq!(read.attributes.status.as_deref(), Some("snoozed"));
    }
}
