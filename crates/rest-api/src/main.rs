fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_rest_api::NAME, devops_rest_api::NEEDS, devops_rest_api::run)
}
