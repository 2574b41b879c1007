fn main() -> std::process::ExitCode {
    devops_runtime::service_main(devops_mcp_server::NAME, devops_mcp_server::NEEDS, devops_mcp_server::run)
}
