//! Cheetah's benchmarks. `benches/codec.rs` times the chunk codec with criterion;
//! `market.py` generates the seeded market of DESIGN.md §6.
