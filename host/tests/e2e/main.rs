//! End-to-end tests: CCAI Platform scenarios through the running sidecar
//! into the Kustomer emulator, one test per SPEC rule of §2–4 and the
//! operational rules (CF1/CF4, RM4, OP2–OP5).
//!
//! Every await is wrapped in [`support::await_or_timeout`] or polled with
//! [`support::eventually`], so a hang fails at a named step; timeouts are
//! generous for slow machines and can be scaled with
//! `SWITCHBOARD_E2E_TIMEOUT_SCALE`.
//!
//! Run: `cargo test -p switchboard --test e2e [filter]`.

#[path = "../support/postgres.rs"]
mod pg;
mod support;

mod attachments;
mod crash;
mod edges;
mod faults;
mod hot_swap;
mod isolation;
mod memory;
mod mirror;
mod operation;
mod recency;
mod replicas;
mod sessions;
mod shadow;
mod spec_rules;
mod startup;
