//! The Kustomer mirror's storage (KU2): customers and conversations as
//! Kustomer last showed them, when it showed them, and which customers'
//! conversation lists are known to be complete. Bodies are opaque JSON owned
//! by `crate::mirror`.
//!
//! Kustomer may deliver the same change twice or out of order: a body only
//! replaces one that Kustomer changed no later (`updated_at_ms`), while the
//! time it was last confirmed (`seen_at_ms`) only moves forward.
//!
//! Each stored body carries the version its writer picked for it (a random
//! non-zero number; 0 on rows from before versions), so a reader holding a
//! parsed copy of that version needs no body: the version changes whenever
//! the body does.
use super::StoreError;

/// One mirrored resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub id: String,
    pub body: String,
    /// The version of `body` (0: unknown).
    pub version: i64,
    /// When Kustomer last confirmed it (ms since the epoch).
    pub seen_at_ms: i64,
}

/// A mirrored resource without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub id: String,
    /// The version of the body the row holds (0: unknown).
    pub version: i64,
    /// When Kustomer last confirmed it (ms since the epoch).
    pub seen_at_ms: i64,
}

/// What a lookup by phone, email or external id knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// Nothing recorded for the key.
    Unknown,
    /// Kustomer had no customer with it, at that time.
    Absent {
        seen_at_ms: i64,
    },
    Found(Mirrored),
}

/// A customer, and the keys it is found by (`phone`, `email`, `external_id`).
#[derive(Debug, Clone)]
pub struct MirrorCustomer<'a> {
    pub id: &'a str,
    pub body: &'a str,
    /// The version `body` is stored under (non-zero, new for each body).
    pub version: i64,
    pub updated_at_ms: i64,
    pub keys: Vec<(&'static str, String)>,
}

/// A conversation of a customer.
#[derive(Debug, Clone)]
pub struct MirrorConversation<'a> {
    pub id: &'a str,
    pub customer_id: &'a str,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub body: &'a str,
    /// The version `body` is stored under (non-zero, new for each body).
    pub version: i64,
}

/// MirrorStore operations, implemented by each backend.
pub trait MirrorStore {
    /// Records a customer Kustomer showed at `seen_at_ms`, with its keys.
    fn mirror_customer(
        &self,
        tenant: &str,
        customer: &MirrorCustomer<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Records that Kustomer found this customer by this key.
    fn mirror_key(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        customer_id: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Records that Kustomer had no customer with this key at `seen_at_ms`.
    fn mirror_absent(
        &self,
        tenant: &str,
        kind: &str,
        value: &str,
        seen_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// The customer recorded under a key.
    fn mirrored_key(&self, tenant: &str, kind: &str, value: &str) -> Result<KeyLookup, StoreError>;

    /// A mirrored customer.
    fn mirrored_customer(&self, tenant: &str, id: &str) -> Result<Option<Mirrored>, StoreError>;

    /// Records a conversation Kustomer showed at `seen_at_ms`.
    fn mirror_conversation(
        &self,
        tenant: &str,
        conversation: &MirrorConversation<'_>,
        seen_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// A mirrored conversation.
    fn mirrored_conversation(&self, tenant: &str, id: &str)
        -> Result<Option<Mirrored>, StoreError>;

    /// Records that every conversation of the customer that existed at
    /// `listed_at_ms` is mirrored.
    fn mirror_listed(
        &self,
        tenant: &str,
        customer_id: &str,
        listed_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// When the customer's conversations were last known complete, and
    /// the newest `limit` of them by creation time, without their bodies.
    fn mirrored_conversations(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Option<(i64, Vec<Stamp>)>, StoreError>;
}
