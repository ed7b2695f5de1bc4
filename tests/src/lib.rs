//! Integration tests live in `databases/`; this crate has no library code.
