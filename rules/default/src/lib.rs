//! The default rule module: SPEC §2–6 exactly as the guest SDK's defaults
//! implement them. Tenants without a module of their own run this one.
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct DefaultRules;

impl Rule for DefaultRules {}

register_rule!(DefaultRules);
