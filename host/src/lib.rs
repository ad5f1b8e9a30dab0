//! Switchboard: a sidecar that turns Google CCAI Platform contact-centre events
//! into Kustomer CRM records, with every decision made by the tenant's
//! WebAssembly rule module.
//!
//! # Layout
//! - [`runtime`]: the wasmtime engine that loads, validates and runs rule
//!   modules in a sandbox (one fresh store per call).
//! - [`connectors`]: the Kustomer and CCAI Platform API clients.
//! - [`status_sync`]: agent status sync between Kustomer and CCAI Platform.
//! - [`click_to_call`]: click-to-call prefill and dialling.
//! - [`cli`]: the `switchboard` command line.

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
pub mod pipeline;
pub mod runtime;
pub mod status_sync;
pub mod store;
