//! Kustomer REST API client (see `../shared/reference/kustomer-api.md`).
