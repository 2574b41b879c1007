fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_reviewer::NAME, devops_reviewer::NEEDS, devops_reviewer::run)
}
