//! `cargo bench-encore`: the side-by-side cost benchmark. All logic lives in the library.

fn main() -> std::process::ExitCode {
    encore_bench::main()
}
