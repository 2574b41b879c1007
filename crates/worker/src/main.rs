fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_worker::NAME, devops_worker::NEEDS, devops_worker::run)
}
