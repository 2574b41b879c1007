//! The fixture tools, resources and prompts the MCP conformance suite
//! (`@modelcontextprotocol/conformance`) exercises. Served only when
//! `mcp.conformance_fixtures` is set, which needs `--dev`, and always behind
//! the real transport and authentication. Values are the ones the suite's
//! scenarios check.
//!
//! The suite still exercises sampling and logging, which SEP-2577
//! deprecates; so does this module.
#![allow(deprecated)]

use std::time::Duration;

use rmcp::model::{
    CallToolResult, CompleteResult, ContentBlock, CreateMessageRequestParams, ElicitRequestParams, GetPromptResult,
    JsonObject, LoggingMessageNotificationParam, Prompt, ReadResourceResult, Resource, ResourceTemplate, ResultType,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use rmcp::model::{ErrorCode, InputRequiredResult, RequestStateCodec, SubscriptionFilter};
use tokio::sync::broadcast;

use crate::handler::Progress;

/// A list the suite watches for changes over `subscriptions/listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListChange {
    Tools,
    Prompts,
}

/// State the 2026-07-28 fixtures keep: the key that seals `requestState`,
/// and the channel that carries list changes to listen streams.
pub struct Fixtures {
    codec: RequestStateCodec,
    pub changes: broadcast::Sender<ListChange>,
}

impl Default for Fixtures {
    fn default() -> Self {
        let key: [u8; 32] = rand::random();
        let (changes, _) = broadcast::channel(16);
        Self { codec: RequestStateCodec::new_unchecked(key.to_vec()), changes }
    }
}

impl Fixtures {
    /// The part of a requested filter this server serves.
    pub fn accept(requested: &SubscriptionFilter) -> SubscriptionFilter {
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted
    }
}

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, McpError> {
    serde_json::from_value(value).map_err(|e| McpError::internal_error(format!("fixture: {e}"), None))
}

/// Results built from JSON lack the `resultType` the constructors set; rmcp
/// drops it again for peers on protocol versions before 2026-07-28.
macro_rules! complete {
    ($result:expr) => {{
        let mut result = $result;
        result.result_type = Some(ResultType::COMPLETE);
        result
    }};
}

fn tool(name: &str, description: &str, input_schema: Value) -> Tool {
    from_json(json!({ "name": name, "description": description, "inputSchema": input_schema })).unwrap_or_default()
}

fn empty_object() -> Value {
    json!({ "type": "object", "properties": {} })
}

const INPUT_REQUIRED_TOOLS: [&str; 9] = [
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
    "test_streaming_elicitation",
];

/// The fixture tools, built once: a call looks its tool up here.
pub fn tools() -> &'static [Tool] {
    static TOOLS: std::sync::LazyLock<Vec<Tool>> = std::sync::LazyLock::new(fixture_tools);
    &TOOLS
}

fn fixture_tools() -> Vec<Tool> {
    let mut tools = vec![
        tool("test_simple_text", "Returns a simple text response", empty_object()),
        tool("test_image_content", "Returns an image", empty_object()),
        tool("test_audio_content", "Returns audio", empty_object()),
        tool("test_embedded_resource", "Returns an embedded resource", empty_object()),
        tool("test_multiple_content_types", "Returns text, an image and a resource", empty_object()),
        tool("test_tool_with_logging", "Sends log messages while running", empty_object()),
        tool("test_tool_with_progress", "Reports progress while running", empty_object()),
        tool("test_error_handling", "Always fails with a tool error", empty_object()),
        tool(
            "test_sampling",
            "Asks the client's model to complete a prompt",
            json!({ "type": "object", "properties": { "prompt": { "type": "string" } }, "required": ["prompt"] }),
        ),
        tool(
            "test_elicitation",
            "Asks the user for information through the client",
            json!({ "type": "object", "properties": { "message": { "type": "string" } }, "required": ["message"] }),
        ),
        tool("test_elicitation_sep1034_defaults", "Asks for input with default values (SEP-1034)", empty_object()),
        tool("test_elicitation_sep1330_enums", "Asks for input with every enum form (SEP-1330)", empty_object()),
        tool(
            "json_schema_2020_12_tool",
            "Takes arguments described with JSON Schema 2020-12",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": { "address": { "$anchor": "address", "type": "object",
                    "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "kind": { "type": "string" },
                    "contact": { "type": "string" }
                },
                "allOf": [ { "anyOf": [ { "required": ["name"] }, { "required": ["address"] } ] } ],
                "if": { "properties": { "kind": { "const": "person" } } },
                "then": { "required": ["name"] },
                "else": { "required": ["contact"] },
                "additionalProperties": false
            }),
        ),
        tool("test_missing_capability", "Needs the client's sampling capability", empty_object()),
        tool("test_logging_tool", "Logs only when the request asks for a log level", empty_object()),
        tool("test_trigger_tool_change", "Announces a change of the tool list", empty_object()),
        tool("test_trigger_prompt_change", "Announces a change of the prompt list", empty_object()),
        tool(
            "test_custom_header",
            "Takes a parameter that is mirrored in the Mcp-Param-Region header",
            json!({ "type": "object", "properties": {
                "region": { "type": "string", "x-mcp-header": "Region" } }, "required": ["region"] }),
        ),
    ];
    tools.extend(
        INPUT_REQUIRED_TOOLS.map(|name| tool(name, "Asks the client for input before completing", empty_object())),
    );
    tools
}

pub fn is_fixture(name: &str) -> bool {
    tools().iter().any(|t| t.name == name)
}

/// The fixtures that send the client a request of their own (sampling,
/// elicitation) while they run: keep this in step with [`call`].
const ASK_THE_CLIENT: [&str; 4] =
    ["test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums"];

pub fn asks_the_client(name: &str) -> bool {
    ASK_THE_CLIENT.contains(&name)
}

/// What a multi-round fixture remembers between rounds, sealed in `requestState`.
#[derive(serde::Serialize, serde::Deserialize)]
struct RoundState {
    tool: String,
    round: u32,
}

fn elicitation_request(message: &str, property: &str, kind: &str) -> Value {
    json!({ "method": "elicitation/create", "params": { "mode": "form", "message": message,
        "requestedSchema": { "type": "object", "properties": { property: { "type": kind } }, "required": [property] } } })
}

fn sampling_request() -> Value {
    json!({ "method": "sampling/createMessage", "params": {
        "messages": [{ "role": "user", "content": { "type": "text", "text": "What is the capital of France?" } }],
        "maxTokens": 100 } })
}

fn roots_request() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

fn input_required(requests: Value, state: Option<String>) -> Result<InputRequiredResult, McpError> {
    let mut result = json!({ "resultType": "input_required", "inputRequests": requests });
    if let Some(state) = state {
        result["requestState"] = json!(state);
    }
    from_json(result)
}

/// An accepted elicitation answer, or a sampling or roots answer, under `key`.
fn answered(responses: Option<&rmcp::model::InputResponses>, key: &str) -> Option<Value> {
    let value = responses?.get(key)?;
    let valid = value.get("action").and_then(Value::as_str) == Some("accept")
        || value.get("content").is_some()
        || value.get("roots").is_some()
        || value.get("role").is_some();
    valid.then(|| value.clone())
}

fn seal(fixtures: &Fixtures, tool: &str, round: u32) -> Result<String, McpError> {
    fixtures
        .codec
        .seal_json(&RoundState { tool: tool.to_owned(), round })
        .map_err(|e| McpError::internal_error(format!("cannot seal state: {e}"), None))
}

/// Opens an echoed `requestState`; a tampered or foreign one is an error.
fn open(fixtures: &Fixtures, tool: &str, state: Option<&str>) -> Result<Option<u32>, McpError> {
    let Some(state) = state else { return Ok(None) };
    let opened: RoundState = fixtures
        .codec
        .open_json(state)
        .map_err(|_| McpError::invalid_params("requestState failed verification", None))?;
    if opened.tool != tool {
        return Err(McpError::invalid_params("requestState belongs to another request", None));
    }
    Ok(Some(opened.round))
}

fn input_required_tool(
    fixtures: &Fixtures,
    name: &str,
    request: &rmcp::model::CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<rmcp::model::CallToolResponse, McpError> {
    let responses = request.input_responses.as_ref();
    let round = open(fixtures, name, request.request_state.as_deref())?;
    let done = |message: String| text(&message).map(Into::into);
    let ask = |requests: Value, state: Option<String>| input_required(requests, state).map(Into::into);
    match name {
        "test_input_required_result_elicitation" | "test_streaming_elicitation" => {
            match answered(responses, "user_name") {
                Some(answer) => done(format!("Hello, {}!", answer["content"]["name"].as_str().unwrap_or("there"))),
                None => ask(json!({ "user_name": elicitation_request("What is your name?", "name", "string") }), None),
            }
        }
        "test_input_required_result_sampling" => match answered(responses, "capital_question") {
            Some(answer) => {
                done(format!("Sampling result: {}", answer["content"]["text"].as_str().unwrap_or_default()))
            }
            None => ask(json!({ "capital_question": sampling_request() }), None),
        },
        "test_input_required_result_list_roots" => match answered(responses, "client_roots") {
            Some(answer) => done(format!("Roots: {}", answer["roots"])),
            None => ask(json!({ "client_roots": roots_request() }), None),
        },
        "test_input_required_result_request_state" | "test_input_required_result_tampered_state" => {
            match (round, answered(responses, "confirm")) {
                (Some(1), Some(_)) => done("state-ok".into()),
                _ => ask(
                    json!({ "confirm": elicitation_request("Confirm to continue", "ok", "boolean") }),
                    Some(seal(fixtures, name, 1)?),
                ),
            }
        }
        "test_input_required_result_multiple_inputs" => {
            let all =
                ["user_name", "capital_question", "client_roots"].iter().all(|k| answered(responses, k).is_some());
            if round == Some(1) && all {
                done("all inputs received".into())
            } else {
                ask(
                    json!({ "user_name": elicitation_request("What is your name?", "name", "string"),
                            "capital_question": sampling_request(),
                            "client_roots": roots_request() }),
                    Some(seal(fixtures, name, 1)?),
                )
            }
        }
        "test_input_required_result_multi_round" => {
            match (round, answered(responses, "step1"), answered(responses, "step2")) {
                (Some(2), _, Some(_)) => done("multi-round complete".into()),
                (Some(1), Some(_), _) => ask(
                    json!({ "step2": elicitation_request("Second question", "context", "string") }),
                    Some(seal(fixtures, name, 2)?),
                ),
                _ => ask(
                    json!({ "step1": elicitation_request("First question", "name", "string") }),
                    Some(seal(fixtures, name, 1)?),
                ),
            }
        }
        "test_input_required_result_capabilities" => {
            let caps = context.meta.client_capabilities();
            let can_elicit = caps.as_ref().is_some_and(|c| c.elicitation.is_some());
            let can_sample = caps.as_ref().is_some_and(|c| c.sampling.is_some());
            match (answered(responses, "user_name"), answered(responses, "capital_question")) {
                (Some(_), _) | (_, Some(_)) => done("capability-aware input received".into()),
                _ if can_elicit => {
                    ask(json!({ "user_name": elicitation_request("What is your name?", "name", "string") }), None)
                }
                _ if can_sample => ask(json!({ "capital_question": sampling_request() }), None),
                _ => ask(json!({ "client_roots": roots_request() }), None),
            }
        }
        other => Err(McpError::invalid_params(format!("unknown tool: {other}"), None)),
    }
}

fn content_result(content: Value, is_error: bool) -> Result<CallToolResult, McpError> {
    Ok(complete!(from_json::<CallToolResult>(json!({ "content": content, "isError": is_error }))?))
}

pub async fn call(
    fixtures: &Fixtures,
    request: rmcp::model::CallToolRequestParams,
    context: &RequestContext<RoleServer>,
    progress: &Progress,
) -> Result<rmcp::model::CallToolResponse, McpError> {
    let name = request.name.to_string();
    if INPUT_REQUIRED_TOOLS.contains(&name.as_str()) {
        return input_required_tool(fixtures, &name, &request, context);
    }
    let arguments = request.arguments.clone().unwrap_or_default();
    match name.as_str() {
        "test_missing_capability" => {
            let has_sampling = context
                .meta
                .client_capabilities()
                .or_else(|| context.peer.peer_info().map(|info| info.capabilities.clone()))
                .is_some_and(|caps| caps.sampling.is_some());
            if !has_sampling {
                return Err(McpError::new(
                    ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    "this tool needs the client's sampling capability",
                    Some(json!({ "requiredCapabilities": { "sampling": {} } })),
                ));
            }
            text("the client can sample")
        }
        "test_logging_tool" => {
            if context.meta.log_level().is_some() {
                let param: LoggingMessageNotificationParam =
                    from_json(json!({ "level": "info", "logger": "conformance", "data": "logging tool ran" }))?;
                let _ = context.peer.notify_logging_message(param).await;
            }
            text("logging tool done")
        }
        "test_trigger_tool_change" => {
            let _ = fixtures.changes.send(ListChange::Tools);
            text("tool list change announced")
        }
        "test_trigger_prompt_change" => {
            let _ = fixtures.changes.send(ListChange::Prompts);
            text("prompt list change announced")
        }
        "test_custom_header" => {
            let region = arguments.get("region").and_then(Value::as_str).unwrap_or_default();
            text(&format!("region: {region}"))
        }
        _ => plain_tool(&name, arguments, context, progress).await,
    }
    .map(Into::into)
}

/// A text result, built directly: the load benchmark calls the simplest
/// fixture, which should cost no more than the peers' `echo`.
fn text(message: &str) -> Result<CallToolResult, McpError> {
    Ok(complete!(CallToolResult::success(vec![ContentBlock::text(message)])))
}

async fn plain_tool(
    name: &str,
    arguments: JsonObject,
    context: &RequestContext<RoleServer>,
    progress: &Progress,
) -> Result<CallToolResult, McpError> {
    match name {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => {
            content_result(json!([{ "type": "image", "data": PNG, "mimeType": "image/png" }]), false)
        }
        "test_audio_content" => {
            content_result(json!([{ "type": "audio", "data": WAV, "mimeType": "audio/wav" }]), false)
        }
        "test_embedded_resource" => content_result(
            json!([{ "type": "resource", "resource": {
                "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content." } }]),
            false,
        ),
        "test_multiple_content_types" => content_result(
            json!([
                { "type": "text", "text": "Multiple content types test:" },
                { "type": "image", "data": PNG, "mimeType": "image/png" },
                { "type": "resource", "resource": {
                    "uri": "test://mixed-content-resource", "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}" } }
            ]),
            false,
        ),
        "test_tool_with_logging" => {
            for message in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
                let param: LoggingMessageNotificationParam =
                    from_json(json!({ "level": "info", "logger": "conformance", "data": message }))?;
                let _ = context.peer.notify_logging_message(param).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            text("Tool with logging executed successfully")
        }
        "test_tool_with_progress" => {
            for done in [0, 50, 100] {
                progress.report(done, Some(100), "working").await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            text("Tool with progress executed successfully")
        }
        "test_error_handling" => content_result(
            json!([{ "type": "text", "text": "This tool intentionally returns an error for testing" }]),
            true,
        ),
        "test_sampling" => {
            let prompt = arguments.get("prompt").and_then(Value::as_str).unwrap_or("Test prompt for sampling");
            let params: CreateMessageRequestParams = from_json(json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
                "maxTokens": 100
            }))?;
            let answer = context
                .peer
                .create_message(params)
                .await
                .map_err(|e| McpError::internal_error(format!("sampling failed: {e}"), None))?;
            let reply = serde_json::to_value(&answer.message.content)
                .ok()
                .and_then(|c| c.get("text").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            text(&format!("LLM response: {reply}"))
        }
        "test_elicitation" => {
            let message = arguments.get("message").and_then(Value::as_str).unwrap_or("Please provide your information");
            elicit(
                context,
                message,
                json!({ "type": "object", "required": ["username", "email"], "properties": {
                    "username": { "type": "string", "description": "Your username" },
                    "email": { "type": "string", "description": "Your email address" } } }),
            )
            .await
        }
        "test_elicitation_sep1034_defaults" => {
            elicit(
                context,
                "Please review and update the form fields with defaults",
                json!({ "type": "object", "properties": {
                    "name": { "type": "string", "description": "User name", "default": "John Doe" },
                    "age": { "type": "integer", "description": "User age", "default": 30 },
                    "score": { "type": "number", "description": "User score", "default": 95.5 },
                    "status": { "type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active" },
                    "verified": { "type": "boolean", "description": "Verification status", "default": true } } }),
            )
            .await
        }
        "test_elicitation_sep1330_enums" => {
            elicit(
                context,
                "Please select options from the enum fields",
                json!({ "type": "object", "properties": {
                    "untitledSingle": { "type": "string", "description": "Choose one option", "enum": ["option1", "option2", "option3"] },
                    "titledSingle": { "type": "string", "description": "Choose one titled option", "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" } ] },
                    "legacyEnum": { "type": "string", "description": "Choose one (legacy)", "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"] },
                    "untitledMulti": { "type": "array", "description": "Choose several", "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
                    "titledMulti": { "type": "array", "description": "Choose several titled", "items": { "anyOf": [
                        { "const": "value1", "title": "First Choice" },
                        { "const": "value2", "title": "Second Choice" },
                        { "const": "value3", "title": "Third Choice" } ] } } } }),
            )
            .await
        }
        "json_schema_2020_12_tool" => content_result(
            json!([{ "type": "text", "text": format!("Received: {}", Value::Object(arguments)) }]),
            false,
        ),
        other => Err(McpError::invalid_params(format!("unknown tool: {other}"), None)),
    }
}

/// Sends a form elicitation on the call's own stream and reports the answer.
async fn elicit(
    context: &RequestContext<RoleServer>,
    message: &str,
    schema: Value,
) -> Result<CallToolResult, McpError> {
    let params: ElicitRequestParams =
        from_json(json!({ "mode": "form", "message": message, "requestedSchema": schema }))?;
    let answer = context
        .peer
        .create_elicitation(params)
        .await
        .map_err(|e| McpError::internal_error(format!("elicitation failed: {e}"), None))?;
    let answer = serde_json::to_value(&answer).unwrap_or_default();
    text(&format!("Elicitation result: {answer}"))
}

pub fn resources() -> Result<Vec<Resource>, McpError> {
    from_json(json!([
        { "uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain" },
        { "uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource", "mimeType": "image/png" },
        { "uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to", "mimeType": "text/plain" }
    ]))
}

pub fn resource_templates() -> Result<Vec<ResourceTemplate>, McpError> {
    from_json(json!([
        { "uriTemplate": "test://template/{id}/data", "name": "template-data", "description": "Data for an id", "mimeType": "application/json" }
    ]))
}

pub fn read_resource(uri: &str) -> Result<ReadResourceResult, McpError> {
    let contents = match uri {
        "test://static-text" => {
            json!([{ "uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource." }])
        }
        "test://static-binary" => json!([{ "uri": uri, "mimeType": "image/png", "blob": PNG }]),
        "test://watched-resource" => {
            json!([{ "uri": uri, "mimeType": "text/plain", "text": "Watched resource content." }])
        }
        _ => match uri.strip_prefix("test://template/").and_then(|rest| rest.strip_suffix("/data")) {
            Some(id) if !id.is_empty() && !id.contains('/') => {
                let text = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") }).to_string();
                json!([{ "uri": uri, "mimeType": "application/json", "text": text }])
            }
            _ => return Err(McpError::invalid_params(format!("no resource {uri}"), Some(json!({ "uri": uri })))),
        },
    };
    Ok(complete!(from_json::<ReadResourceResult>(json!({ "contents": contents }))?))
}

pub fn prompts() -> Result<Vec<Prompt>, McpError> {
    from_json(json!([
        { "name": "test_simple_prompt", "description": "A simple prompt without arguments" },
        { "name": "test_prompt_with_arguments", "description": "A prompt with arguments",
          "arguments": [ { "name": "arg1", "description": "First argument", "required": true },
                         { "name": "arg2", "description": "Second argument", "required": true } ] },
        { "name": "test_prompt_with_embedded_resource", "description": "A prompt with an embedded resource",
          "arguments": [ { "name": "resourceUri", "description": "URI of the resource to embed", "required": true } ] },
        { "name": "test_prompt_with_image", "description": "A prompt with an image" },
        { "name": "test_input_required_result_prompt", "description": "A prompt that asks the client for context first" }
    ]))
}

pub fn get_prompt_or_ask(
    request: &rmcp::model::GetPromptRequestParams,
) -> Result<rmcp::model::GetPromptResponse, McpError> {
    let arguments = request.arguments.clone().unwrap_or_default();
    if request.name == "test_input_required_result_prompt" {
        return match answered(request.input_responses.as_ref(), "user_context") {
            Some(answer) => {
                let context = answer["content"]["context"].as_str().unwrap_or_default().to_owned();
                let messages = json!([{ "role": "user", "content": { "type": "text", "text": format!("Context: {context}") } }]);
                Ok(complete!(from_json::<GetPromptResult>(json!({ "messages": messages }))?).into())
            }
            None => input_required(
                json!({ "user_context": elicitation_request("What context should the prompt use?", "context", "string") }),
                None,
            )
            .map(Into::into),
        };
    }
    get_prompt(&request.name, &arguments).map(Into::into)
}

fn get_prompt(name: &str, arguments: &JsonObject) -> Result<GetPromptResult, McpError> {
    let arg = |key: &str| arguments.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let messages = match name {
        "test_simple_prompt" => {
            json!([{ "role": "user", "content": { "type": "text", "text": "This is a simple prompt for testing." } }])
        }
        "test_prompt_with_arguments" => json!([{ "role": "user", "content": { "type": "text",
            "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2")) } }]),
        "test_prompt_with_embedded_resource" => json!([
            { "role": "user", "content": { "type": "resource", "resource": {
                "uri": arg("resourceUri"), "mimeType": "text/plain", "text": "Embedded resource content for testing." } } },
            { "role": "user", "content": { "type": "text", "text": "Please process the embedded resource above." } }
        ]),
        "test_prompt_with_image" => json!([
            { "role": "user", "content": { "type": "image", "data": PNG, "mimeType": "image/png" } },
            { "role": "user", "content": { "type": "text", "text": "Please analyze the image above." } }
        ]),
        other => return Err(McpError::invalid_params(format!("unknown prompt: {other}"), None)),
    };
    Ok(complete!(from_json::<GetPromptResult>(json!({ "messages": messages }))?))
}

pub fn complete() -> Result<CompleteResult, McpError> {
    Ok(complete!(from_json::<CompleteResult>(json!({ "completion": { "values": [], "total": 0, "hasMore": false } }))?))
}
