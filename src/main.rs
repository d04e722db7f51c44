//! The `seckill` command: migrations, items, seckills and benchmarks from the shell. See `seckill --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
