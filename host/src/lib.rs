//! Switchboard: a sidecar that turns Google CCAI Platform contact-centre events
//! into Kustomer CRM records, with every decision made by the tenant's
//! WebAssembly rule module.
//!
//! # Layout
//! In the order data flows through the service; each layer uses only the
//! ones after it.
//!
//! 1. [`http`]: the operator's routes (health, readiness, metrics, screen
//!    pop, the admin API), beside the routes of [`intake`], [`status_sync`]
//!    and [`click_to_call`]; [`app`] builds every part from the
//!    configuration and serves them through [`http::server`] (a connection
//!    cap, header-read, idle and request timeouts), [`cli`] is the
//!    `switchboard` command and [`demo`] (feature `demo`) the
//!    self-contained demo.
//! 2. [`intake`]: session events, chat webhooks and the Manager API poller,
//!    authenticated, validated and normalised into WIT session events.
//! 3. [`store`]: the durable inbox (written before the 2xx), outcomes,
//!    session links, the session ledger, the Kustomer mirror, status-sync
//!    state and poller cursors.
//! 4. [`pipeline`]: each customer's events in order: context from the
//!    Kustomer [`mirror`], a decision from the tenant's module, the plan
//!    carried out. [`status_sync`] and [`click_to_call`] are the agent-side
//!    features beside it (their changes go through the same inbox and
//!    scheduler, IS5): they decide through the same runtime and act through
//!    the same clients. [`mirror`] keeps what Kustomer last showed (writes'
//!    answers, reads, its signed webhooks) and reads through when too old.
//! 5. [`runtime`]: the wasmtime engine that loads, validates and runs rule
//!    modules in a sandbox (one fresh store per call) and the module
//!    registry with hot swap.
//! 6. [`connectors`]: the Kustomer and CCAI Platform API clients, with one
//!    retry policy and rate limiting.
//!
//! Used by several layers, and using none above [`runtime`] and
//! [`connectors`]:
//! - [`tenant`]: one handle per tenant (configuration, its one Kustomer and
//!   one CCAI client, its directory of agents and statuses), built once and
//!   borrowed by intake, pipeline, status sync and click-to-call;
//! - [`config`]: the configuration file and its validation;
//! - [`fields`]: the standard custom fields (CF1–CF5);
//! - [`phone`]: phone numbers to E.164, in the tenant's region;
//! - [`web`]: JSON error bodies and credential checks every route uses.

pub mod app;
pub mod cli;
pub mod click_to_call;
pub mod config;
pub mod connectors;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fields;
pub mod http;
pub mod intake;
pub mod mirror;
pub mod phone;
pub mod pipeline;
pub mod runtime;
pub mod status_sync;
pub mod store;
pub mod tenant;
pub mod web;
