//! One test binary for every source database: each scenario runs against SQLite, PostgreSQL and
//! MariaDB. A server that is down is skipped loudly, or fails the run when
//! `CHEETAH_REQUIRE_DATABASES` is set (as in CI).

mod catalog;
mod cli;
mod crash;
mod disk;
mod harness;
mod service;
mod update;
mod verify;
