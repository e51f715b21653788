//! `paxbench`: see `paxbench --help`.

fn main() -> std::process::ExitCode {
    paxbench_loadgen::cli::main()
}
