-- Tools a tenant's admins switched off for every key of the tenant. The
-- version grows on each change; MCP servers poll it and tell sessions
-- (notifications/tools/list_changed).
CREATE TABLE tenant_tool_settings (
    tenant_id       BLOB PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    disabled_tools  TEXT NOT NULL,
    version         INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX tenant_tool_settings_updated_at ON tenant_tool_settings (updated_at);
