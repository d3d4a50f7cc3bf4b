//! The registry: every tool the server offers, in a fixed order, with its MCP listing built
//! from the declaration.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, MetaObject, ToolAnnotations};
use serde_json::{Value, json};

use super::{Collect, Collector, Declaration, Render, Tier, Tool, ToolContext, ToolError};

/// A tool's answer, type-erased: the structured value and its text rendering.
#[derive(Debug, Clone)]
pub struct Answer {
    pub structured: Value,
    pub text: String,
}

type Run = Box<dyn FnOnce(ToolContext) -> BoxFuture<'static, Result<Answer, ToolError>> + Send>;
type Prepare = dyn Fn(JsonObject) -> Result<Prepared, ToolError> + Send + Sync;

/// A call whose arguments parsed: what it needs beyond the declared tier, and how to run it.
pub struct Prepared {
    /// A higher tier than the declared one these arguments need, and why.
    pub escalation: Option<(Tier, String)>,
    run: Run,
}

impl Prepared {
    pub fn run(self, context: ToolContext) -> BoxFuture<'static, Result<Answer, ToolError>> {
        (self.run)(context)
    }
}

/// One registered tool: its declaration, schemas and erased entry point.
pub struct RegisteredTool {
    declaration: &'static Declaration,
    schemas: fn() -> (Arc<JsonObject>, Arc<JsonObject>),
    prepare: Box<Prepare>,
}

impl RegisteredTool {
    pub fn declaration(&self) -> &'static Declaration {
        self.declaration
    }

    /// Parses the arguments against the tool's input type; running is a separate step so the
    /// gate can decide on the tier the arguments need first.
    pub fn prepare(&self, arguments: JsonObject) -> Result<Prepared, ToolError> {
        (self.prepare)(arguments)
    }

    /// The input and output schemas (the output schema includes the gate's `truncated` marker).
    pub fn schemas(&self) -> (Arc<JsonObject>, Arc<JsonObject>) {
        (self.schemas)()
    }

    fn to_mcp(&self) -> rmcp::model::Tool {
        let declaration = self.declaration;
        let (input, output) = self.schemas();
        let read = declaration.tier == Tier::Read;
        let annotations = ToolAnnotations::with_title(declaration.title)
            .read_only(read)
            .destructive(!read && declaration.destructive)
            .idempotent(read || declaration.idempotent)
            .open_world(declaration.open_world);
        let mut meta = MetaObject::new();
        meta.0
            .insert("systemmanager/tier".into(), json!(declaration.tier));
        meta.0
            .insert("systemmanager/domain".into(), json!(declaration.domain));
        rmcp::model::Tool::new_with_raw(
            declaration.name,
            Some(declaration.description.into()),
            input,
        )
        .with_title(declaration.title)
        .with_raw_output_schema(output)
        .with_annotations(annotations)
        .with_meta(meta)
    }
}

/// Every tool, in registration order (domain by domain), which is the `tools/list` order.
pub struct Registry {
    /// Tools above this tier are not registered at all (read-only mode, admin tier off).
    max_tier: Tier,
    tools: Vec<RegisteredTool>,
    by_name: HashMap<&'static str, usize>,
    listing: OnceLock<Vec<rmcp::model::Tool>>,
    /// The tool a `resources/read` of a `file://` URI calls, when a domain offers one.
    file_resources: Option<&'static str>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(Tier::Admin)
    }
}

impl Registry {
    /// A registry that accepts tools up to `max_tier`.
    pub fn new(max_tier: Tier) -> Self {
        Self {
            max_tier,
            tools: Vec::new(),
            by_name: HashMap::new(),
            listing: OnceLock::new(),
            file_resources: None,
        }
    }

    /// Adds a tool, unless its tier is above the registry's highest.
    ///
    /// # Panics
    /// When a tool of the same name is already registered: that is a programming error, caught
    /// by the metadata tests.
    pub fn register<T: Tool>(&mut self, tool: T) {
        let declaration = tool.declaration();
        assert!(
            !self.by_name.contains_key(declaration.name),
            "tool `{}` registered twice",
            declaration.name
        );
        if declaration.tier > self.max_tier {
            return;
        }
        let tool = Arc::new(tool);
        let prepare = move |arguments: JsonObject| -> Result<Prepared, ToolError> {
            let arguments: T::Arguments = parse_arguments(arguments)?;
            let escalation = tool
                .required_tier(&arguments)
                .filter(|(tier, _)| *tier > tool.declaration().tier);
            let tool = Arc::clone(&tool);
            let run: Run = Box::new(move |context| {
                Box::pin(async move {
                    let output = tool.run(arguments, context).await?;
                    let text = output.render_text();
                    let structured = serde_json::to_value(&output).map_err(|error| {
                        ToolError::failed(format!("cannot encode the answer: {error}"))
                    })?;
                    Ok(Answer { structured, text })
                })
            });
            Ok(Prepared { escalation, run })
        };
        self.by_name.insert(declaration.name, self.tools.len());
        self.tools.push(RegisteredTool {
            declaration,
            schemas: schemas_of::<T>,
            prepare: Box::new(prepare),
        });
    }

    /// Makes `tool` (registered already) the reader of `file://` resources: a resource read
    /// is a call of it through the gate, with its arguments `path`, `offset` and `max_bytes`,
    /// and its answer's `content`, `size_bytes`, `next_offset` and `mime_type`.
    pub fn serve_file_resources_with(&mut self, tool: &'static Declaration) {
        if self.by_name.contains_key(tool.name) {
            self.file_resources = Some(tool.name);
        }
    }

    /// The tool that reads `file://` resources, when this configuration has one.
    pub fn file_resources(&self) -> Option<&RegisteredTool> {
        self.get(self.file_resources?)
    }

    /// Adds a read tool that is a collection (see [`Collect`]).
    pub fn register_collector<C: Collect>(&mut self, collector: C) {
        self.register(Collector(Arc::new(collector)));
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.by_name.get(name).map(|index| &self.tools[*index])
    }

    pub fn iter(&self) -> impl Iterator<Item = &RegisteredTool> {
        self.tools.iter()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The MCP tool listing, built once on first use (schema generation is not free, and a
    /// stdio session that never lists tools should not pay for it at start-up).
    pub fn mcp_tools(&self) -> &[rmcp::model::Tool] {
        self.listing
            .get_or_init(|| self.tools.iter().map(RegisteredTool::to_mcp).collect())
    }

    pub fn mcp_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        let index = *self.by_name.get(name)?;
        self.mcp_tools().get(index).cloned()
    }

    /// The MCP listing of the tools `show` keeps, in registry order.
    pub fn mcp_tools_where(
        &self,
        mut show: impl FnMut(&Declaration) -> bool,
    ) -> Vec<rmcp::model::Tool> {
        self.tools
            .iter()
            .zip(self.mcp_tools())
            .filter(|(tool, _)| show(tool.declaration))
            .map(|(_, listed)| listed.clone())
            .collect()
    }
}

/// Deserializes arguments into the tool's input type; errors name the offending field.
fn parse_arguments<A: serde::de::DeserializeOwned>(arguments: JsonObject) -> Result<A, ToolError> {
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        let message = if path == "." {
            format!("invalid arguments: {inner}")
        } else {
            format!("invalid argument `{path}`: {inner}")
        };
        ToolError::invalid_arguments(message)
    })
}

fn schemas_of<T: Tool>() -> (Arc<JsonObject>, Arc<JsonObject>) {
    // A derived struct schema is always an object, so this cannot fail for our tools; the
    // metadata tests check every registered tool anyway.
    let mut input = schema_for_input::<T::Arguments>()
        .unwrap_or_else(|error| panic!("input schema of `{}`: {error}", std::any::type_name::<T>()))
        .as_ref()
        .clone();
    // Some clients require `properties` even when a tool takes no arguments.
    input
        .entry("properties")
        .or_insert_with(|| Value::Object(JsonObject::new()));
    for_each_object_schema(&mut input, &mut drop_null_from_optional_properties);
    let input = Arc::new(input);
    let mut output = schema_for_output::<T::Output>().as_ref().clone();
    for_each_object_schema(&mut output, &mut drop_null_from_optional_properties);
    add_truncation_marker(&mut output);
    (input, Arc::new(output))
}

/// Calls `visit` on every object schema in `schema`: the root, `$defs`, nested properties and
/// array items.
fn for_each_object_schema(schema: &mut JsonObject, visit: &mut impl FnMut(&mut JsonObject)) {
    visit(schema);
    for key in ["$defs", "properties"] {
        if let Some(Value::Object(children)) = schema.get_mut(key) {
            for child in children.values_mut() {
                if let Value::Object(child) = child {
                    for_each_object_schema(child, visit);
                }
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(Value::Object(child)) = schema.get_mut(key) {
            for_each_object_schema(child, visit);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(children)) = schema.get_mut(key) {
            for child in children.iter_mut() {
                if let Value::Object(child) = child {
                    for_each_object_schema(child, visit);
                }
            }
        }
    }
}

/// Optional fields are left out, not sent as `null`: outputs skip them when empty
/// (`skip_serializing_if`), and callers omit optional arguments. So their schema need not admit
/// `null`, and a single `type` is what the most clients (and model providers' schema dialects)
/// accept.
fn drop_null_from_optional_properties(schema: &mut JsonObject) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|kind| kind != "null");
            if types.len() == 1 {
                let single = types[0].clone();
                property["type"] = single;
            }
        }
        // An optional struct is `anyOf: [{$ref}, {type: null}]`: keep the one real choice,
        // lifted next to the property's description.
        let Some(Value::Array(choices)) = property.get_mut("anyOf") else {
            continue;
        };
        choices.retain(|choice| choice.get("type") != Some(&json!("null")));
        if let [Value::Object(only)] = choices.as_slice() {
            let only = only.clone();
            if let Value::Object(property) = property {
                property.remove("anyOf");
                property.extend(only);
            }
        }
    }
}

/// Declares the `truncated` field the gate adds when it cuts an oversized answer, so capped
/// answers still match the output schema.
fn add_truncation_marker(schema: &mut JsonObject) {
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "truncated".into(),
            json!({
                "type": "object",
                "description": "Present only when the answer was cut to fit the output limit.",
                "properties": {
                    "field": { "type": "string", "description": "The list that was shortened." },
                    "returned": { "type": "integer", "minimum": 0 },
                    "total": { "type": "integer", "minimum": 0 },
                    "hint": { "type": "string", "description": "How to get the rest." }
                },
                "required": ["field", "returned", "total", "hint"]
            }),
        );
    }
}
