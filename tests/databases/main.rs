//! One test binary for every source database: each scenario is a test case per database
//! (`scenario::sqlite`, `scenario::postgres`, `scenario::mariadb`). A server that is down is
//! skipped loudly, or fails the run when `CHEETAH_REQUIRE_DATABASES` is set (as in CI).

#[macro_use]
mod harness;

mod catalog;
mod cli;
mod connections;
mod crash;
mod disk;
mod fixtures;
mod flight;
mod interrupt;
mod local;
mod processes;
mod research;
mod secrets;
mod service;
mod share;
mod sources;
mod update;
mod verify;
mod versions;
