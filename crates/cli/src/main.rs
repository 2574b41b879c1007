fn main() -> std::process::ExitCode {
    devops_cli::main()
}
