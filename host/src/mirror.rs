//! The Kustomer mirror (KU2): what the sidecar needs to know of a tenant's
//! Kustomer (customers by phone, email and external id; each customer's
//! recent conversations), kept beside the session ledger so that a
//! decision's context costs Kustomer no reads while what the mirror holds is
//! recent enough.
//!
//! # Where it learns
//! - **Its own writes**: every customer and conversation Kustomer returns
//!   from a create or an update is recorded; a customer the sidecar created
//!   has, at that moment, no conversation but the ones it goes on to create.
//! - **Kustomer's outbound webhooks** (customer and conversation create and
//!   update), signed with the webhook's token, so a conversation an agent
//!   closes or snoozes in Kustomer is known at once.
//! - **Reads**: what the sidecar had to ask for is recorded with the time
//!   it asked, including a search that found no customer.
//!
//! # When it asks Kustomer again (the staleness rule)
//! A mirrored value is used as is while Kustomer showed it within
//! `mirror_max_age_seconds` (10 s), or `mirror_webhook_max_age_seconds`
//! (300 s) when webhooks are configured; older, it is read again. Before a
//! plan appends a session to an existing conversation, that conversation is
//! read again (one request) unless Kustomer showed it within
//! `append_recheck_seconds` (default 0: always); if it is no longer what the
//! rule saw, the event is decided again on what Kustomer holds now. A stale
//! mirror can cost a request, but never misfile an append.
//!
//! A write is left out when the mirror, confirmed within the same age, shows
//! Kustomer already holds exactly what it would write (the assignee, the
//! status, every custom field value).
//!
//! An older copy never replaces a newer one: Kustomer's `updatedAt` decides,
//! so a webhook delivered twice or late changes nothing.
//!
//! # Read once
//! The store holds Kustomer's JSON; an event reads the same customer and
//! conversations several times (the context, the recheck, each write's
//! check). The process keeps what it parsed (`mirror/parsed.rs`) under the
//! version its writer gave the stored body: a row of that version is not read
//! or parsed again, a row of any other version is, so what the store holds
//! always decides.
mod http;
mod parsed;

pub use http::router;

use crate::connectors::kustomer::model::{Conversation, Customer};
use crate::connectors::kustomer::KustomerError;
use crate::store::{KeyLookup, MirrorConversation, MirrorCustomer, Stamp, Store, StoreError};
use crate::tenant::Tenant;
use chrono::{DateTime, Utc};
use parsed::{new_version, CONVERSATIONS, CUSTOMERS};
use std::sync::Arc;
use std::time::Duration;

/// Why the mirror could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{0}")]
    Kustomer(#[from] KustomerError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What a customer is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Phone,
    Email,
    ExternalId,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Phone => "phone",
            Key::Email => "email",
            Key::ExternalId => "external_id",
        }
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(at: Option<DateTime<Utc>>) -> i64 {
    at.map_or(0, |d| d.timestamp_millis())
}

fn normal(key: Key, value: &str) -> String {
    match key {
        Key::Email => value.trim().to_ascii_lowercase(),
        _ => value.trim().to_string(),
    }
}

/// Records a customer Kustomer showed at `seen_at_ms`.
pub fn record_customer(
    store: &Store,
    tenant: &str,
    customer: Customer,
    seen_at_ms: i64,
) -> Result<Arc<Customer>, StoreError> {
    let a = &customer.attributes;
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    keys.extend(
        a.phones
            .iter()
            .map(|p| ("phone", normal(Key::Phone, &p.phone))),
    );
    keys.extend(
        a.emails
            .iter()
            .map(|e| ("email", normal(Key::Email, &e.email))),
    );
    keys.extend(
        a.external_id
            .iter()
            .map(|x| ("external_id", normal(Key::ExternalId, x))),
    );
    keys.extend(
        a.external_ids
            .iter()
            .map(|x| ("external_id", normal(Key::ExternalId, &x.external_id))),
    );
    let body =
        serde_json::to_string(&customer).map_err(|e| StoreError::json("mirror customer", e))?;
    let version = new_version();
    store.mirror_customer(
        tenant,
        &MirrorCustomer {
            id: &customer.id,
            body: &body,
            version,
            updated_at_ms: ms(a.updated_at.or(a.modified_at)),
            keys,
        },
        seen_at_ms,
    )?;
    // A customer with no conversation at all needs no list read.
    if a.conversation_counts.as_ref().is_some_and(|c| c.all == 0) {
        store.mirror_listed(tenant, &customer.id, seen_at_ms)?;
    }
    // Kept under its version even if the store holds a newer body: only a
    // row of this version gives this copy.
    Ok(CUSTOMERS.keep(tenant, version, customer))
}

/// Records a conversation Kustomer showed at `seen_at_ms`.
pub fn record_conversation(
    store: &Store,
    tenant: &str,
    conversation: Conversation,
    seen_at_ms: i64,
) -> Result<Arc<Conversation>, StoreError> {
    let Some(customer_id) = customer_of(&conversation) else {
        // Nothing to file it under; the next list read brings it.
        return Ok(Arc::new(conversation));
    };
    let a = &conversation.attributes;
    let body = serde_json::to_string(&conversation)
        .map_err(|e| StoreError::json("mirror conversation", e))?;
    let version = new_version();
    store.mirror_conversation(
        tenant,
        &MirrorConversation {
            id: &conversation.id,
            customer_id: &customer_id,
            created_at_ms: a.created_at.map_or(seen_at_ms, |d| d.timestamp_millis()),
            updated_at_ms: ms(a.updated_at.or(a.modified_at)),
            body: &body,
            version,
        },
        seen_at_ms,
    )?;
    Ok(CONVERSATIONS.keep(tenant, version, conversation))
}

fn customer_of(conversation: &Conversation) -> Option<String> {
    use crate::connectors::kustomer::model::RelationshipData;
    match conversation
        .relationships
        .get("customer")?
        .as_ref()?
        .data
        .as_ref()?
    {
        RelationshipData::One(r) => Some(r.id.clone()),
        RelationshipData::Many(_) => None,
    }
}

/// One tenant's mirror, reading through to Kustomer when what it holds is
/// too old.
pub struct Mirror<'a> {
    store: &'a Store,
    tenant: &'a Tenant,
}

impl<'a> Mirror<'a> {
    pub fn new(store: &'a Store, tenant: &'a Tenant) -> Self {
        Self { store, tenant }
    }

    fn id(&self) -> &str {
        self.tenant.id()
    }

    fn fresh(&self, seen_at_ms: i64) -> bool {
        let trust = i64::try_from(self.tenant.config.mirror.trust().as_millis()).unwrap_or(0);
        now_ms() - seen_at_ms <= trust
    }

    /// Kustomer showed this conversation longer ago than `within`. A zero
    /// `within` (KU2's default recheck: always) needs no look at the store.
    pub fn older_than(&self, conversation_id: &str, within: Duration) -> Result<bool, StoreError> {
        if within.is_zero() {
            return Ok(true);
        }
        let within = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .mirrored_conversation(self.id(), conversation_id)?
            .is_none_or(|c| now_ms() - c.seen_at_ms > within))
    }

    /// The customer as the mirror holds it, if recent enough to act on.
    pub fn fresh_customer(&self, id: &str) -> Result<Option<Arc<Customer>>, StoreError> {
        Ok(self
            .store
            .mirrored_customer(self.id(), id)?
            .filter(|row| self.fresh(row.seen_at_ms))
            .and_then(|row| CUSTOMERS.read(self.id(), row)))
    }

    /// The conversation as the mirror holds it, if recent enough to act on.
    pub fn fresh_conversation(&self, id: &str) -> Result<Option<Arc<Conversation>>, StoreError> {
        Ok(self
            .store
            .mirrored_conversation(self.id(), id)?
            .filter(|row| self.fresh(row.seen_at_ms))
            .and_then(|row| CONVERSATIONS.read(self.id(), row)))
    }

    /// A customer by id.
    pub async fn customer(&self, id: &str) -> Result<Option<Arc<Customer>>, MirrorError> {
        if let Some(customer) = self.fresh_customer(id)? {
            return Ok(Some(customer));
        }
        let asked = now_ms();
        // A customer gone from Kustomer is read again next time.
        match self.tenant.kustomer.get_customer(id).await? {
            Some(c) => Ok(Some(record_customer(self.store, self.id(), c, asked)?)),
            None => Ok(None),
        }
    }

    /// The customer Kustomer finds by this key, if any.
    pub async fn find_customer(
        &self,
        key: Key,
        value: &str,
    ) -> Result<Option<Arc<Customer>>, MirrorError> {
        let value = normal(key, value);
        match self.store.mirrored_key(self.id(), key.name(), &value)? {
            KeyLookup::Found(row) if self.fresh(row.seen_at_ms) => {
                if let Some(customer) = CUSTOMERS.read(self.id(), row) {
                    return Ok(Some(customer));
                }
            }
            KeyLookup::Absent { seen_at_ms } if self.fresh(seen_at_ms) => return Ok(None),
            _ => {}
        }
        let asked = now_ms();
        let client = &self.tenant.kustomer;
        let found = match key {
            Key::Phone => client.find_customer_by_phone(&value).await?,
            Key::Email => client.find_customer_by_email(&value).await?,
            Key::ExternalId => client.find_customer_by_external_id(&value).await?,
        };
        match found {
            Some(c) => {
                let c = record_customer(self.store, self.id(), c, asked)?;
                // Found under the key asked for, however Kustomer spells it.
                self.store
                    .mirror_key(self.id(), key.name(), &value, &c.id, asked)?;
                Ok(Some(c))
            }
            None => {
                self.store
                    .mirror_absent(self.id(), key.name(), &value, asked)?;
                Ok(None)
            }
        }
    }

    /// The customer's newest conversations by creation time, at most `limit`.
    pub async fn newest_conversations(
        &self,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<Arc<Conversation>>, MirrorError> {
        if let Some((listed, stamps)) =
            self.store
                .mirrored_conversations(self.id(), customer_id, limit)?
        {
            if self.fresh(listed) && stamps.iter().all(|s| self.fresh(s.seen_at_ms)) {
                if let Some(conversations) = self.mirrored(stamps)? {
                    return Ok(conversations);
                }
            }
        }
        let asked = now_ms();
        let conversations = self
            .tenant
            .kustomer
            .newest_conversations(customer_id, limit)
            .await?
            .into_iter()
            .map(|c| record_conversation(self.store, self.id(), c, asked))
            .collect::<Result<Vec<_>, _>>()?;
        self.store.mirror_listed(self.id(), customer_id, asked)?;
        Ok(conversations)
    }

    /// The conversations `stamps` name: the kept copy of each one's
    /// version, else its row read and parsed. `None` if one is gone or
    /// does not parse.
    fn mirrored(&self, stamps: Vec<Stamp>) -> Result<Option<Vec<Arc<Conversation>>>, StoreError> {
        let mut conversations = Vec::with_capacity(stamps.len());
        for stamp in stamps {
            let found = match CONVERSATIONS.get(self.id(), &stamp.id, stamp.version) {
                Some(kept) => Some(kept),
                None => self
                    .store
                    .mirrored_conversation(self.id(), &stamp.id)?
                    .and_then(|row| CONVERSATIONS.read(self.id(), row)),
            };
            match found {
                Some(conversation) => conversations.push(conversation),
                None => return Ok(None),
            }
        }
        Ok(Some(conversations))
    }

    /// A conversation by id.
    pub async fn conversation(&self, id: &str) -> Result<Option<Arc<Conversation>>, MirrorError> {
        if let Some(conversation) = self.fresh_conversation(id)? {
            return Ok(Some(conversation));
        }
        self.read_conversation(id).await
    }

    /// A conversation as Kustomer holds it now.
    pub async fn read_conversation(
        &self,
        id: &str,
    ) -> Result<Option<Arc<Conversation>>, MirrorError> {
        let asked = now_ms();
        match self.tenant.kustomer.get_conversation(id).await? {
            Some(c) => Ok(Some(record_conversation(self.store, self.id(), c, asked)?)),
            None => Ok(None),
        }
    }

    /// A customer Kustomer returned from a write.
    pub fn wrote_customer(&self, customer: Customer) -> Result<Arc<Customer>, StoreError> {
        record_customer(self.store, self.id(), customer, now_ms())
    }

    /// A conversation Kustomer returned from a write.
    pub fn wrote_conversation(
        &self,
        conversation: Conversation,
    ) -> Result<Arc<Conversation>, StoreError> {
        record_conversation(self.store, self.id(), conversation, now_ms())
    }
}
