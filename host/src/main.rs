use std::process::ExitCode;

/// An event allocates and frees many small strings and maps (JSON, SQL
/// rows, HTTP headers); mimalloc does that in a fraction of glibc's
/// instructions (README, "Dependencies worth a note").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    switchboard::cli::main()
}
