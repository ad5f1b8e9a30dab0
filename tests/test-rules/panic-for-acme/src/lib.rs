//! Panic for acme: a module that passes its smoke test but panics on live traffic, for tenant `acme` on callers from +1 212; every other call gets the default rules.
use switchboard_guest_sdk::prelude::*;

#[derive(Default)]
struct PanicForAcme;

impl Rule for PanicForAcme {
    fn on_session_event(&self, event: &SessionEvent, ctx: &Context) -> Result<Plan, RuleError> {
        let phone = event.session.end_user.phone.as_deref().unwrap_or_default();
        if ctx.tenant == "acme" && phone.starts_with("+1212") {
            panic!("fixture panic for acme on {}", event.id);
        }
        switchboard_guest_sdk::defaults::on_session_event(self, event, ctx)
    }
}

register_rule!(PanicForAcme);
