//! Emulators of the Kustomer and CCAI Platform APIs: real HTTP servers on
//! loopback that follow the public API references closely enough that a
//! real client of those APIs would not notice (`README.md` beside this crate
//! lists what is faithful and what is simplified). Each binds `127.0.0.1:0` (or a given
//! port) and returns its address; a `/__control` surface lets tests inspect
//! state, reset, inject faults and drive the clock.

pub mod bench;
pub mod ccai;
pub mod kustomer;
mod tls;
