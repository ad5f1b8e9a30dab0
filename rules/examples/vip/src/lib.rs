//! Example tenant module (placeholder until the customisations land).
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct VipRules;

impl Rule for VipRules {}

register_rule!(VipRules);
