//! Cheetah's benchmarks. `benches/codec.rs` and `benches/assemble.rs` are criterion benchmarks
//! of the chunk codec and the assembler; `src/bin/odbc-read.rs` is the bare arrow-odbc read the
//! backfill is measured against; `src/bin/chunk-bytes.rs` weighs a date's chunks for the
//! versions benchmark; `compare.py` runs Cheetah and its peers side by side on the
//! seeded market of `market.py` (`make bench`).
