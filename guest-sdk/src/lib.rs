//! # Switchboard guest SDK
//!
//! Write a tenant rule module in Rust. A rule module decides what a
//! contact-centre event means for Kustomer: it receives a
//! [`SessionEvent`] plus a [`Context`] the host gathered, and returns a
//! [`Plan`] of CRM actions the host carries out. It never does I/O.
//!
//! ```ignore
//! use switchboard_guest_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct MyRules;
//!
//! impl Rule for MyRules {
//!     // Override only the decisions you need; the rest are the default rules.
//!     fn append_target(&self, event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
//!         if event.session.queue_name.as_deref() == Some("VIP") {
//!             return None; // VIP callers always get a new conversation
//!         }
//!         defaults::append_target(event, ctx)
//!     }
//! }
//!
//! register_rule!(MyRules);
//! ```
//!
//! - [`Rule`]: the trait a module implements; every method defaults to the
//!   product's default rules, so a module overrides only what it changes.
//! - [`defaults`]: the default rules (SPEC §2–6) as plain functions, with the
//!   plan each event kind produces documented per SPEC id.
//! - [`testing`]: builders and plan assertions to unit-test a rule natively
//!   with `cargo test`, no runtime needed.
//! - [`register_rule!`]: exports a `Rule` type as the module's rules.
//!
//! Build with `cargo build --release --target wasm32-wasip2` and validate with
//! `switchboard rules check <module>.wasm`. This SDK builds modules for
//! `switchboard:rules@`[`WIT_VERSION`]; see the README for the host/SDK
//! compatibility table.
#![deny(missing_docs)]

/// Raw bindings generated from the WIT contract. Tenants normally use the
/// re-exported types and the [`Rule`] trait instead.
#[doc(hidden)]
#[allow(missing_docs, reason = "generated code")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/since_v0.1.0",
        world: "rule",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        pub_export_macro: true,
        default_bindings_module: "switchboard_guest_sdk::bindings",
    });
}

pub mod arena;
pub mod defaults;
pub mod testing;

pub use bindings::switchboard::rules::types::{
    Action, Agent, AgentActivity, Attachment, Channel, Context, Conversation, ConversationStatus,
    CustomDatum, CustomField, Customer, CustomerUpdate, Direction, Durations, EndUser, EventKind,
    FieldMapping, FieldName, FieldTarget, FieldValue, File, FileSource, LogLevel, Menu, Message,
    NewConversation, NewCustomer, Plan, PriorityMode, Rating, RuleError, Session, SessionEvent,
    SessionKind, Settings, SmartActionFailure, SmartActionResult, StandardField, StatusChange,
    StatusContext, StatusDecision, StatusMap, StatusRecord, StatusTarget, System, Transfer,
    Voicemail, VoicemailAction,
};

/// The WIT package version this SDK builds modules for.
pub const WIT_VERSION: &str = "0.1.0";

/// Everything a rule module usually needs.
pub mod prelude {
    pub use crate::defaults;
    pub use crate::register_rule;
    pub use crate::*;
}

/// Write a line to the host's log; it arrives tagged with tenant, module
/// version and event id. Outside a wasm module (native tests) it is dropped.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// A tenant's rules. Every method has a default that follows the product's
/// default rules (SPEC §2–6); override the ones you want to change.
///
/// The two entry points (`on_session_event`, `on_status_change`) run the
/// default flow, which calls the finer-grained decision methods below, so
/// overriding one decision keeps the rest of the default behaviour.
pub trait Rule {
    /// Decide what a session event means for Kustomer.
    fn on_session_event(&self, event: &SessionEvent, ctx: &Context) -> Result<Plan, RuleError> {
        defaults::on_session_event(self, event, ctx)
    }

    /// Decide what to do with an agent status change.
    fn on_status_change(&self, change: &StatusChange, ctx: &StatusContext) -> StatusDecision {
        defaults::on_status_change(change, ctx)
    }

    /// The open conversation a session should be appended to, if any: TU1
    /// for inbound calls and chats, TU2 for outbound calls, TU5/TU6 for
    /// call-backs. `None` creates a new conversation (TC1–TC4). Voicemails
    /// never ask (TC5 always creates).
    fn append_target(&self, event: &SessionEvent, ctx: &Context) -> Option<Conversation> {
        defaults::append_target(event, ctx)
    }

    /// The conversation to create for a session (TC1–TC5, SD1).
    fn new_conversation(&self, event: &SessionEvent, ctx: &Context) -> NewConversation {
        defaults::new_conversation(event, ctx)
    }

    /// The customer to create when Kustomer does not know the caller (CC1, CC2).
    fn new_customer(&self, event: &SessionEvent, ctx: &Context) -> NewCustomer {
        defaults::new_customer(event, ctx)
    }

    /// Custom fields to write from the SDK's custom data (TU9): returns
    /// `(customer fields, conversation fields)`.
    fn map_custom_data(
        &self,
        data: &[CustomDatum],
        ctx: &Context,
    ) -> (Vec<CustomField>, Vec<CustomField>) {
        defaults::map_custom_data(data, ctx)
    }

    /// The call/chat record added to a conversation the session creates or
    /// is appended to (SD1 meta: session id, caller id, language, menu).
    fn call_record(&self, event: &SessionEvent, ctx: &Context) -> Message {
        defaults::call_record(event, ctx)
    }

    /// The note with the contact's E.164 phone added to every conversation a
    /// phone session creates or appends to (PN1); `None` adds no note.
    fn phone_note(&self, event: &SessionEvent, ctx: &Context) -> Option<String> {
        defaults::phone_note(event, ctx)
    }
}

/// Export a [`Rule`] implementation as this module's rules. The type must
/// implement [`Default`] (a unit struct is typical).
///
/// It also installs the [`arena`] allocator, made for the one fresh instance
/// per event the host runs. A module that brings its own global allocator
/// writes `register_rule!(MyRules, allocator = own)` instead.
#[macro_export]
macro_rules! register_rule {
    ($rule:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __SWITCHBOARD_ARENA: $crate::arena::Arena = $crate::arena::Arena::new();

        $crate::register_rule!($rule, allocator = own);
    };
    ($rule:ty, allocator = own) => {
        #[doc(hidden)]
        struct __SwitchboardExport;

        impl $crate::bindings::Guest for __SwitchboardExport {
            fn on_session_event(
                event: $crate::SessionEvent,
                ctx: $crate::Context,
            ) -> ::core::result::Result<$crate::Plan, $crate::RuleError> {
                <$rule as $crate::Rule>::on_session_event(
                    &<$rule as ::core::default::Default>::default(),
                    &event,
                    &ctx,
                )
            }

            fn on_status_change(
                change: $crate::StatusChange,
                ctx: $crate::StatusContext,
            ) -> $crate::StatusDecision {
                <$rule as $crate::Rule>::on_status_change(
                    &<$rule as ::core::default::Default>::default(),
                    &change,
                    &ctx,
                )
            }
        }

        $crate::bindings::export!(__SwitchboardExport with_types_in $crate::bindings);
    };
}
