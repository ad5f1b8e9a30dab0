//! Emulators of the Kustomer and CCAI Platform APIs: real HTTP servers on
//! loopback that follow `../shared/reference/` closely enough that a real
//! client of those APIs would not notice. Each binds `127.0.0.1:0` (or a given
//! port) and returns its address; a `/__control` surface lets tests inspect
//! state, reset, inject faults and drive the clock.

pub mod bench;
pub mod ccai;
pub mod kustomer;
mod tls;
