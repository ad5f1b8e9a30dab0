//! The standard custom fields of SPEC §5: their Kustomer names (CF5: one
//! prefix plus a type suffix), where they live (CF2 customer, CF3
//! conversation), and provisioning them in Kustomer's metadata (CF1).
use crate::connectors::kustomer::model::{MetadataResource, PropertyDefinition};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::runtime::types::{FieldMapping, FieldTarget, StandardField};
use std::collections::BTreeMap;

/// Every standard field with its base name, type suffix, display name and
/// the object it belongs to.
const FIELDS: [(StandardField, &str, &str, &str, MetadataResource); 12] = [
    (
        StandardField::CustomUserId,
        "CustomUserId",
        "Str",
        "Custom User ID",
        MetadataResource::Customer,
    ),
    (
        StandardField::QueueName,
        "QueueName",
        "Str",
        "Queue Name",
        MetadataResource::Conversation,
    ),
    (
        StandardField::SessionType,
        "SessionType",
        "Str",
        "Session Type",
        MetadataResource::Conversation,
    ),
    (
        StandardField::SessionId,
        "SessionId",
        "Str",
        "Session ID",
        MetadataResource::Conversation,
    ),
    (
        StandardField::FromPhone,
        "FromPhoneNumber",
        "Str",
        "From Phone Number",
        MetadataResource::Conversation,
    ),
    (
        StandardField::CallDuration,
        "CallDuration",
        "Num",
        "Call Duration",
        MetadataResource::Conversation,
    ),
    (
        StandardField::HoldTime,
        "HoldTime",
        "Num",
        "Hold Time",
        MetadataResource::Conversation,
    ),
    (
        StandardField::WaitTime,
        "WaitTime",
        "Num",
        "Wait Time",
        MetadataResource::Conversation,
    ),
    (
        StandardField::CsatRating,
        "CsatRating",
        "Num",
        "CSAT Rating",
        MetadataResource::Conversation,
    ),
    (
        StandardField::CsatComment,
        "CsatComment",
        "Txt",
        "CSAT Comment",
        MetadataResource::Conversation,
    ),
    (
        StandardField::MenuSelection,
        "CustomerMenuSelection",
        "Str",
        "Customer Menu Selection",
        MetadataResource::Conversation,
    ),
    (
        StandardField::EmailInWeb,
        "EmailInWeb",
        "Str",
        "Email (In-Web)",
        MetadataResource::Conversation,
    ),
];

/// Kustomer's custom attribute type suffixes (CF5).
const SUFFIXES: [&str; 7] = ["Str", "Num", "Txt", "At", "Bool", "Url", "Id"];

/// True when `name` ends in a Kustomer type suffix after at least one letter.
pub fn has_type_suffix(name: &str) -> bool {
    SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A tenant's standard field names (each rule decision carries them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardFields {
    prefix: String,
    names: Vec<(StandardField, String)>,
}

impl StandardFields {
    /// Names `<prefix><Base><Suffix>`, e.g. `ccaiQueueNameStr`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
            names: FIELDS
                .iter()
                .map(|(field, base, suffix, _, _)| (*field, format!("{prefix}{base}{suffix}")))
                .collect(),
        }
    }

    /// The prefix of every name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Kustomer attribute name of a field.
    pub fn name(&self, field: StandardField) -> String {
        self.names
            .iter()
            .find(|(f, _)| *f == field)
            .map_or_else(String::new, |(_, name)| name.clone())
    }

    /// Every field with its name.
    pub fn all(&self) -> &[(StandardField, String)] {
        &self.names
    }

    /// The customer attribute that holds CU1's assignment (Kustomer
    /// customers have no assignee of their own).
    pub fn assigned_agent(&self) -> String {
        format!("{}AssignedAgentStr", self.prefix)
    }

    fn definitions(&self, resource: MetadataResource) -> BTreeMap<String, PropertyDefinition> {
        FIELDS
            .iter()
            .filter(|f| f.4 == resource)
            .map(|f| (self.name(f.0), PropertyDefinition::named(f.3)))
            .collect()
    }
}

/// Every custom attribute the sidecar may write for a tenant, per resource:
/// the standard fields (CF2, CF3), CU1's assignment, and each SDK custom-data
/// key the tenant maps (TU9). `fields provision` declares them all (KU5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declared {
    pub customer: BTreeMap<String, PropertyDefinition>,
    pub conversation: BTreeMap<String, PropertyDefinition>,
}

impl Declared {
    pub fn of(fields: &StandardFields, mapping: &[FieldMapping]) -> Self {
        let mut customer = fields.definitions(MetadataResource::Customer);
        customer.insert(
            fields.assigned_agent(),
            PropertyDefinition::named("Assigned Agent"),
        );
        let mut conversation = fields.definitions(MetadataResource::Conversation);
        for m in mapping {
            let target = match m.target {
                FieldTarget::Customer => &mut customer,
                FieldTarget::Conversation => &mut conversation,
            };
            target
                .entry(m.name.clone())
                .or_insert_with(|| PropertyDefinition::named(format!("SDK {}", m.key)));
        }
        Declared {
            customer,
            conversation,
        }
    }

    /// Every declared name, customers' first.
    pub fn names(&self) -> Vec<String> {
        self.customer
            .keys()
            .chain(self.conversation.keys())
            .cloned()
            .collect()
    }

    /// The declared names Kustomer's metadata does not have (`customer.…`,
    /// `conversation.…`): one read per resource.
    pub async fn missing(&self, client: &KustomerClient) -> Result<Vec<String>, KustomerError> {
        let mut missing = Vec::new();
        for (resource, wanted, label) in [
            (MetadataResource::Customer, &self.customer, "customer"),
            (
                MetadataResource::Conversation,
                &self.conversation,
                "conversation",
            ),
        ] {
            let have = client.get_metadata(resource).await?.attributes.properties;
            missing.extend(
                wanted
                    .keys()
                    .filter(|name| !have.contains_key(*name))
                    .map(|name| format!("{label}.{name}")),
            );
        }
        Ok(missing)
    }
}

/// What provisioning changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Provisioned {
    /// Attributes created or updated on customers.
    pub customer: Vec<String>,
    /// Attributes created or updated on conversations.
    pub conversation: Vec<String>,
}

/// Declares every attribute the tenant's configuration and the default
/// rules write (CF1, KU5): the standard fields, CU1's assignment and the
/// mapped SDK fields. Idempotent: a second run changes nothing; properties
/// it did not create are left alone.
pub async fn provision(
    client: &KustomerClient,
    declared: &Declared,
) -> Result<Provisioned, KustomerError> {
    let customer = client
        .merge_metadata(MetadataResource::Customer, &declared.customer)
        .await?;
    let conversation = client
        .merge_metadata(MetadataResource::Conversation, &declared.conversation)
        .await?;
    Ok(Provisioned {
        customer: customer.changed,
        conversation: conversation.changed,
    })
}

/// What each tenant's Kustomer lacks of [`Declared`], as last checked; read
/// by `/readyz` (KU5). Cheap to share.
#[derive(Debug, Default)]
pub struct FieldChecks {
    /// Tenant → the missing names, or why the check could not be made.
    /// `std` mutex: held for one map update, never across an await.
    by_tenant: std::sync::Mutex<BTreeMap<String, Result<Vec<String>, String>>>,
}

impl FieldChecks {
    /// How often the declarations are checked again.
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(600);

    /// Checks one tenant now (two metadata reads) and keeps the result.
    pub async fn check(&self, tenant: &str, declared: &Declared, client: &KustomerClient) {
        let result = declared.missing(client).await.map_err(|e| e.to_string());
        let count = result.as_ref().map_or(0, Vec::len);
        metrics::gauge!("switchboard_undeclared_fields", "tenant" => tenant.to_string())
            .set(count as f64);
        if let Ok(missing) = &result {
            if !missing.is_empty() {
                tracing::warn!(tenant, ?missing, "Kustomer lacks metadata for attributes this tenant writes; run `switchboard fields provision`");
            }
        }
        self.by_tenant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_string(), result);
    }

    /// One line per tenant whose Kustomer lacks a declaration (or could not
    /// be checked).
    pub fn warnings(&self) -> Vec<String> {
        let map = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter_map(|(tenant, result)| match result {
                Ok(missing) if missing.is_empty() => None,
                Ok(missing) => Some(format!(
                    "tenant `{tenant}`: Kustomer has no metadata for {}; run `switchboard fields provision --tenant {tenant}`",
                    missing.join(", ")
                )),
                Err(e) => Some(format!("tenant `{tenant}`: field declarations not checked: {e}")),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf5_names_carry_prefix_and_type_suffix() {
        let f = StandardFields::with_prefix("ccai");
        assert_eq!(f.name(StandardField::QueueName), "ccaiQueueNameStr");
        assert_eq!(f.name(StandardField::CallDuration), "ccaiCallDurationNum");
        assert_eq!(f.name(StandardField::CsatComment), "ccaiCsatCommentTxt");
        assert!(
            f.all().iter().all(|(_, n)| has_type_suffix(n)),
            "{:?}",
            f.all()
        );
    }

    #[test]
    fn cf2_cf3_one_customer_field_and_eleven_conversation_fields() {
        let f = StandardFields::with_prefix("ccai");
        assert_eq!(
            f.definitions(MetadataResource::Customer)
                .keys()
                .collect::<Vec<_>>(),
            vec!["ccaiCustomUserIdStr"]
        );
        assert_eq!(f.definitions(MetadataResource::Conversation).len(), 11);
    }

    #[test]
    fn ku5_everything_written_is_declared() {
        let f = StandardFields::with_prefix("ccai");
        let mapping = [
            FieldMapping {
                key: "loyalty_tier".into(),
                target: FieldTarget::Customer,
                name: "loyaltyTierStr".into(),
            },
            FieldMapping {
                key: "order_id".into(),
                target: FieldTarget::Conversation,
                name: "orderIdStr".into(),
            },
        ];
        let declared = Declared::of(&f, &mapping);
        assert_eq!(
            declared.customer.keys().collect::<Vec<_>>(),
            [
                "ccaiAssignedAgentStr",
                "ccaiCustomUserIdStr",
                "loyaltyTierStr"
            ]
        );
        assert!(declared.conversation.contains_key("orderIdStr"));
        assert_eq!(declared.conversation.len(), 12);
        assert_eq!(declared.names().len(), 15);
    }

    #[test]
    fn type_suffix_check() {
        assert!(has_type_suffix("ccaiLoyaltyTierStr"));
        assert!(!has_type_suffix("ccaiLoyaltyTier"));
        assert!(!has_type_suffix("Str"));
        assert!(!has_type_suffix("bad-nameStr"));
    }
}
