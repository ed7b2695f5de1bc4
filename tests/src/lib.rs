//! Integration tests live in `databases/`, the fixture stores they open in `fixtures/`, and the
//! tool that makes the corrupted fixture in `src/bin/`; this crate has no library code.
