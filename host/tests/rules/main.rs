//! Rule modules through the real runtime: the default module per SPEC id,
//! the hostile fixtures, and the example tenant module. One test binary so
//! wasmtime is linked once.

mod compile_cache;
mod contract;
mod default_rules;
mod example;
mod hostile;
mod registry;
mod support;
