fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_pr_manager::NAME, devops_pr_manager::NEEDS, devops_pr_manager::run)
}
