fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_indexer::NAME, devops_indexer::NEEDS, devops_indexer::run)
}
