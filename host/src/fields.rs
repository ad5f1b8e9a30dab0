//! The standard custom fields of SPEC §5: their Kustomer names (CF5: one
//! prefix plus a type suffix), where they live (CF2 customer, CF3
//! conversation), and provisioning them in Kustomer's metadata (CF1).
use crate::connectors::kustomer::model::{MetadataResource, PropertyDefinition};
use crate::connectors::kustomer::{KustomerClient, KustomerError};
use crate::runtime::types::StandardField;
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

/// A tenant's standard field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardFields {
    prefix: String,
}

impl StandardFields {
    /// Names `<prefix><Base><Suffix>`, e.g. `ccaiQueueNameStr`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The prefix of every name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Kustomer attribute name of a field.
    pub fn name(&self, field: StandardField) -> String {
        let (_, base, suffix, _, _) = FIELDS
            .iter()
            .find(|f| f.0 == field)
            .copied()
            .unwrap_or(FIELDS[0]);
        format!("{}{base}{suffix}", self.prefix)
    }

    /// Every field with its name.
    pub fn all(&self) -> Vec<(StandardField, String)> {
        FIELDS.iter().map(|f| (f.0, self.name(f.0))).collect()
    }

    fn definitions(&self, resource: MetadataResource) -> BTreeMap<String, PropertyDefinition> {
        FIELDS
            .iter()
            .filter(|f| f.4 == resource)
            .map(|f| (self.name(f.0), PropertyDefinition::named(f.3)))
            .collect()
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

/// Creates the standard fields in Kustomer's metadata (CF1). Idempotent: a
/// second run changes nothing; properties it did not create are left alone.
pub async fn provision(
    client: &KustomerClient,
    fields: &StandardFields,
) -> Result<Provisioned, KustomerError> {
    let customer = client
        .merge_metadata(
            MetadataResource::Customer,
            &fields.definitions(MetadataResource::Customer),
        )
        .await?;
    let conversation = client
        .merge_metadata(
            MetadataResource::Conversation,
            &fields.definitions(MetadataResource::Conversation),
        )
        .await?;
    Ok(Provisioned {
        customer: customer.changed,
        conversation: conversation.changed,
    })
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
    fn type_suffix_check() {
        assert!(has_type_suffix("ccaiLoyaltyTierStr"));
        assert!(!has_type_suffix("ccaiLoyaltyTier"));
        assert!(!has_type_suffix("Str"));
        assert!(!has_type_suffix("bad-nameStr"));
    }
}
