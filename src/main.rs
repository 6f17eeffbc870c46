//! The `trtforge` command line. Parsing and printing only; the work is in the library.

mod cli;

fn main() -> std::process::ExitCode {
    // A closed stdout (`trtforge cache show X | head`) ends the process as it ends `cat`:
    // Rust's runtime ignores SIGPIPE, which turns every later print into a panic.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
