//! Example tenant module: customises ticket creation, appending and field
//! mapping on top of the default rules and keeps everything else.
//!
//! - VIP callers (customer tagged `vip`, or SDK custom data `vip=true`)
//!   always get a **new** conversation, never an append, with priority 5 and
//!   the tag `vip`.
//! - The SDK custom-data key `loyalty_tier` is written to the conversation
//!   field `ccaiLoyaltyTierStr`, in addition to the tenant's configured
//!   mapping (TU9).
use switchboard_guest_sdk::prelude::*;

/// Customer tag and conversation tag marking a VIP.
const VIP_TAG: &str = "vip";
/// SDK custom-data key marking a VIP when its value is `true`.
const VIP_KEY: &str = "vip";
/// SDK custom-data key of the loyalty tier.
const LOYALTY_KEY: &str = "loyalty_tier";
/// Conversation attribute the loyalty tier goes to (CF5 `Str` suffix).
const LOYALTY_FIELD: &str = "ccaiLoyaltyTierStr";
/// Priority of a VIP conversation (Kustomer's highest).
const VIP_PRIORITY: u8 = 5;

#[derive(Default)]
struct VipRules;

/// A caller is a VIP when Kustomer tags the customer `vip` or the session's
/// SDK custom data says `vip=true`.
fn is_vip(event: &SessionEvent, ctx: &Context) -> bool {
    let tagged = ctx
        .customer
        .as_ref()
        .is_some_and(|c| c.tags.iter().any(|t| t.eq_ignore_ascii_case(VIP_TAG)));
    let flagged = event
        .session
        .custom_data
        .iter()
        .any(|d| d.key == VIP_KEY && d.value.trim().eq_ignore_ascii_case("true"));
    tagged || flagged
}

impl Rule for VipRules {
    fn append_target(&self, event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
        if is_vip(event, ctx) {
            return None;
        }
        defaults::append_target(event, ctx)
    }

    fn new_conversation(&self, event: &SessionEvent, ctx: &Context) -> NewConversation {
        let mut conversation = defaults::new_conversation(event, ctx);
        if is_vip(event, ctx) {
            conversation.priority = Some(VIP_PRIORITY);
            if !conversation.tags.iter().any(|t| t == VIP_TAG) {
                conversation.tags.push(VIP_TAG.to_string());
            }
        }
        conversation
    }

    fn map_custom_data(
        &self,
        data: &[CustomDatum],
        ctx: &Context,
    ) -> (Vec<CustomField>, Vec<CustomField>) {
        let (customer, mut conversation) = defaults::map_custom_data(data, ctx);
        if let Some(tier) = data.iter().find(|d| d.key == LOYALTY_KEY) {
            if !conversation.iter().any(|f| f.name == LOYALTY_FIELD) {
                conversation.push(defaults::text_field(LOYALTY_FIELD, &tier.value));
            }
        }
        (customer, conversation)
    }
}

register_rule!(VipRules);
