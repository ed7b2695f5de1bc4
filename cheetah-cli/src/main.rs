//! The `cheetah` binary: [`cheetah_cli::run`] in a process of its own.

use std::process::ExitCode;

// glibc returns every freed buffer of a megabyte or more to the kernel, so a server encoding
// each read into fresh message buffers paid a page fault per 4 KiB of every read (a sixth of a
// Flight read's time); mimalloc keeps freed memory for the next read.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(cheetah_cli::run(std::env::args_os()))
}
