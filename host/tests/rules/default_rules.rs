//! default_rules
