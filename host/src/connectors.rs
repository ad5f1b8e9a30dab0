//! Connections to the two SaaS platforms. Only the host talks to them; rule
//! modules never do I/O.

pub mod ccai;
pub mod kustomer;
