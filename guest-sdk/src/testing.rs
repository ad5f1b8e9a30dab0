//! Helpers to unit-test a rule natively, without a runtime.
