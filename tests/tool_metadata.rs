//! Every registered tool's declaration is complete and consistent, and its schemas are valid
//! JSON Schema that its real answers satisfy.

use std::sync::Arc;

use serde_json::Value;
use systemmanager::access::Caller;
use systemmanager::audit::AuditLog;
use systemmanager::config::Config;
use systemmanager::domains;
use systemmanager::gate::{Call, Gate, Limits, Policy, Throttle};
use systemmanager::tool::Tier;

/// Every tool there is: the default configuration plus a file root (without one the file
/// tools are not registered), the admin tier and Docker exec (both off by default).
fn registry() -> systemmanager::tool::Registry {
    let mut config = Config::default();
    config.files.roots = vec![systemmanager::config::AbsolutePath(std::env::temp_dir())];
    config.docker.exec_enabled = true;
    config.security.admin_tier = true;
    domains::registry(&config)
}

#[test]
fn every_tool_has_a_name_title_and_description() {
    let registry = registry();
    assert!(!registry.is_empty());
    for tool in registry.iter() {
        let declaration = tool.declaration();
        let name = declaration.name;
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "`{name}` is not a snake_case tool name"
        );
        assert!(
            !declaration.title.trim().is_empty(),
            "`{name}` has no title"
        );
        assert!(
            declaration.description.len() >= 40,
            "`{name}` needs a description a model can choose by"
        );
    }
}

#[test]
fn annotations_agree_with_the_tier() {
    for tool in registry().mcp_tools() {
        let name = &tool.name;
        let annotations = tool.annotations.as_ref().expect("annotations");
        let tier: Tier = serde_json::from_value(
            tool.meta
                .as_ref()
                .and_then(|meta| meta.0.get("systemmanager/tier"))
                .cloned()
                .expect("tier in _meta"),
        )
        .expect("a tier");
        assert_eq!(
            tool.title.as_deref(),
            annotations.title.as_deref(),
            "{name}"
        );
        assert!(tool.title.is_some(), "{name} has no title");
        let read_only = annotations.read_only_hint.expect("readOnlyHint");
        let destructive = annotations.destructive_hint.expect("destructiveHint");
        assert!(
            annotations.idempotent_hint.is_some(),
            "{name}: idempotentHint"
        );
        assert!(
            annotations.open_world_hint.is_some(),
            "{name}: openWorldHint"
        );
        match tier {
            Tier::Read => {
                assert!(read_only, "{name}: a read tool must be read-only");
                assert!(!destructive, "{name}: a read tool cannot be destructive");
            }
            Tier::Operate | Tier::Admin => {
                assert!(!read_only, "{name}: an {tier} tool changes things");
            }
        }
    }
}

#[test]
fn schemas_are_valid_json_schema_with_object_roots() {
    // The meta-schema check itself must be able to fail.
    assert!(jsonschema::meta::validate(&serde_json::json!({ "type": 5 })).is_err());
    for tool in registry().mcp_tools() {
        let name = &tool.name;
        let input = Value::Object(tool.input_schema.as_ref().clone());
        let output = Value::Object(
            tool.output_schema
                .as_ref()
                .unwrap_or_else(|| panic!("{name} declares no output schema"))
                .as_ref()
                .clone(),
        );
        for (which, schema) in [("input", &input), ("output", &output)] {
            if let Err(error) = jsonschema::meta::validate(schema) {
                panic!("{name}: the {which} schema is not valid JSON Schema: {error}");
            }
            assert_eq!(
                schema["type"], "object",
                "{name}: {which} schema root must be an object"
            );
            assert!(
                schema["properties"].is_object(),
                "{name}: {which} schema needs properties"
            );
        }
        for (which, schema) in [("input", &input), ("output", &output)] {
            assert!(
                !schema.to_string().contains(r#""null""#),
                "{name}: {which} fields are left out when empty, never null (outputs: add \
                 #[serde(skip_serializing_if = \"Option::is_none\")] to optional fields)"
            );
        }
        assert!(
            output["properties"]["truncated"].is_object(),
            "{name}: the output schema must declare the gate's truncation marker"
        );
    }
}

#[test]
fn the_listing_order_is_stable() {
    let first: Vec<String> = registry()
        .mcp_tools()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    let second: Vec<String> = registry()
        .mcp_tools()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(first, second);
}

#[test]
#[should_panic(expected = "registered twice")]
fn registering_a_name_twice_is_refused() {
    use systemmanager::tool::{Declaration, Domain, NoArguments, ToolContext, ToolError};

    static SECOND_OVERVIEW: Declaration = Declaration::read(
        Domain::System,
        "system_overview",
        "A second overview",
        "A tool whose name another tool already has.",
    );
    struct SecondOverview;
    impl systemmanager::tool::Tool for SecondOverview {
        type Arguments = NoArguments;
        type Output = Empty;
        fn declaration(&self) -> &'static Declaration {
            &SECOND_OVERVIEW
        }
        async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Empty, ToolError> {
            Ok(Empty {})
        }
    }
    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Empty {}
    impl systemmanager::tool::Render for Empty {
        fn render_text(&self) -> String {
            String::new()
        }
    }
    let mut registry = registry();
    registry.register(SecondOverview);
}

/// Calls each argument-free read tool on this host and validates the answer against its schema.
#[tokio::test]
async fn real_answers_satisfy_the_output_schema() {
    let config = Config::default();
    let gate = Arc::new(Gate::new(
        registry(),
        Arc::new(Policy::from_config(&config)),
        Throttle::from_config(&config.limits),
        Arc::new(AuditLog::disabled()),
        Limits::from(&config.limits),
    ));
    let tools = gate.registry().mcp_tools().to_vec();
    let mut checked = 0;
    for tool in tools {
        // Argument-free read tools: calling them changes nothing on this machine.
        let takes_no_arguments = tool
            .input_schema
            .get("required")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        let read_only = tool
            .annotations
            .as_ref()
            .and_then(|a| a.read_only_hint)
            .unwrap_or(false);
        if !takes_no_arguments || !read_only {
            continue;
        }
        let result = gate
            .call(Call::new(
                Arc::new(Caller::stdio(gate.policy().local_role())),
                tool.name.to_string(),
                None,
            ))
            .await
            .expect("known tool");
        assert_eq!(
            result.is_error,
            Some(false),
            "{}: {:?}",
            tool.name,
            result.content
        );
        let schema = Value::Object(tool.output_schema.expect("schema").as_ref().clone());
        let validator = jsonschema::validator_for(&schema).expect("compiles");
        let answer = result.structured_content.expect("structured content");
        let errors: Vec<String> = validator
            .iter_errors(&answer)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", tool.name);
        checked += 1;
    }
    assert!(checked >= 1);
}
