//! The gate's guarantees, exercised with purpose-built tools: timeouts, the output cap, panics,
//! argument validation, unknown tools, cancellation and draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::{CallToolResult, ErrorCode, JsonObject};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use systemmanager::access::Caller;
use systemmanager::audit::AuditLog;
use systemmanager::bounded::Bounded;
use systemmanager::config::Config;
use systemmanager::gate::{Call, Gate, Limits, Policy, Throttle};
use systemmanager::tool::{
    Declaration, Domain, NoArguments, Registry, Render, Tier, Tool, ToolContext, ToolError,
};
use tokio_util::sync::CancellationToken;

fn declaration(name: &'static str) -> &'static Declaration {
    Box::leak(Box::new(
        Declaration::read(
            Domain::System,
            name,
            "Test tool",
            "A tool that exists only in the gate tests.",
        )
        .paged("use `limit` to page"),
    ))
}

#[derive(Debug, Serialize, JsonSchema)]
struct Rows {
    count: usize,
    rows: Vec<String>,
}

impl Render for Rows {
    fn render_text(&self) -> String {
        self.rows.join("\n")
    }
}

/// Sleeps for as long as asked, counting how often it got to finish.
struct SlowTool {
    finished: Arc<AtomicUsize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SleepArguments {
    milliseconds: Bounded<0, 60_000>,
}

impl Tool for SlowTool {
    type Arguments = SleepArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        declaration("test_slow")
    }
    async fn run(&self, arguments: SleepArguments, _: ToolContext) -> Result<Rows, ToolError> {
        tokio::time::sleep(Duration::from_millis(arguments.milliseconds.get())).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(Rows {
            count: 0,
            rows: vec![],
        })
    }
}

/// Answers with as many rows as asked.
struct HugeTool;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HugeArguments {
    rows: Bounded<0, 1_000_000>,
    #[serde(default)]
    label: Option<String>,
}

impl Tool for HugeTool {
    type Arguments = HugeArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        declaration("test_huge")
    }
    async fn run(&self, arguments: HugeArguments, _: ToolContext) -> Result<Rows, ToolError> {
        let label = arguments.label.unwrap_or_else(|| "row".into());
        let count = usize::try_from(arguments.rows.get()).expect("fits");
        Ok(Rows {
            count,
            rows: (0..count).map(|i| format!("{label} {i:06}")).collect(),
        })
    }
}

struct PanickyTool;

impl Tool for PanickyTool {
    type Arguments = NoArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        declaration("test_panic")
    }
    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Rows, ToolError> {
        panic!("a bug in a tool");
    }
}

struct FailingTool;

impl Tool for FailingTool {
    type Arguments = NoArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        declaration("test_fail")
    }
    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Rows, ToolError> {
        Err(ToolError::not_found(
            "no such widget `w1`; list widgets first",
        ))
    }
}

fn gate(timeout: Duration, max_output_bytes: usize) -> (Arc<Gate>, Arc<AtomicUsize>) {
    let finished = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::default();
    registry.register(SlowTool {
        finished: Arc::clone(&finished),
    });
    registry.register(HugeTool);
    registry.register(PanickyTool);
    registry.register(FailingTool);
    let config = Config::default();
    let gate = Gate::new(
        registry,
        Arc::new(Policy::from_config(&config)),
        Throttle::from_config(&config.limits),
        Arc::new(AuditLog::disabled()),
        Limits {
            call_timeout: timeout,
            max_output_bytes,
        },
    );
    (Arc::new(gate), finished)
}

fn local_caller(gate: &Gate) -> Arc<Caller> {
    Arc::new(Caller::stdio(gate.policy().local_role()))
}

fn arguments(value: Value) -> Option<JsonObject> {
    match value {
        Value::Object(object) => Some(object),
        _ => panic!("arguments must be an object"),
    }
}

async fn call(gate: &Gate, name: &str, args: Value) -> CallToolResult {
    gate.call(Call::new(local_caller(gate), name, arguments(args)))
        .await
        .expect("a known tool answers with a result")
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_slow_tool_times_out_with_a_clear_error() {
    let (gate, finished) = gate(Duration::from_millis(100), 65_536);
    let started = std::time::Instant::now();
    let result = call(&gate, "test_slow", json!({ "milliseconds": 5_000 })).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the gate waited too long"
    );
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("did not finish within")
            && message.contains("limits.call_timeout_seconds"),
        "{message}"
    );
    assert!(result.structured_content.is_none());
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "the abandoned call must not complete"
    );
}

#[tokio::test]
async fn a_fast_tool_is_not_affected_by_the_timeout() {
    let (gate, finished) = gate(Duration::from_secs(5), 65_536);
    let result = call(&gate, "test_slow", json!({ "milliseconds": 1 })).await;
    assert_eq!(result.is_error, Some(false));
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_oversized_answer_is_capped_and_marked() {
    let cap = 8 * 1024;
    let (gate, _) = gate(Duration::from_secs(5), cap);
    let result = call(&gate, "test_huge", json!({ "rows": 20_000 })).await;
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.as_ref().expect("structured");
    let text = text(&result);
    let size = serde_json::to_vec(structured).expect("json").len() + text.len();
    assert!(
        size <= cap,
        "answer of {size} bytes exceeds the {cap}-byte cap"
    );

    let marker = &structured["truncated"];
    assert_eq!(marker["field"], "rows");
    assert_eq!(marker["total"], 20_000);
    assert_eq!(marker["hint"], "use `limit` to page");
    let returned = marker["returned"].as_u64().expect("returned");
    assert!(returned > 0 && returned < 20_000);
    assert_eq!(
        structured["rows"].as_array().map(Vec::len),
        Some(returned as usize)
    );
    // The rows kept are the first ones, in order.
    assert_eq!(structured["rows"][0], "row 000000");
    assert!(
        text.ends_with(&format!(
            "… truncated: {returned} of 20000 rows shown; use `limit` to page"
        )),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
}

#[tokio::test]
async fn an_answer_under_the_cap_is_untouched() {
    let (gate, _) = gate(Duration::from_secs(5), 65_536);
    let result = call(&gate, "test_huge", json!({ "rows": 3 })).await;
    let structured = result.structured_content.clone().expect("structured");
    assert!(structured.get("truncated").is_none());
    assert_eq!(
        structured["rows"],
        json!(["row 000000", "row 000001", "row 000002"])
    );
    assert_eq!(text(&result).lines().count(), 3);
}

#[tokio::test]
async fn an_answer_that_cannot_be_shortened_is_refused_with_advice() {
    let (gate, _) = gate(Duration::from_secs(5), 1024);
    // One row alone is larger than the cap.
    let label = "x".repeat(5_000);
    let result = call(&gate, "test_huge", json!({ "rows": 1, "label": label })).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("exceeds limits.max_output_bytes (1024)")
            && message.contains("use `limit` to page"),
        "{message}"
    );
}

#[tokio::test]
async fn a_panicking_tool_becomes_an_error_result_and_the_gate_keeps_serving() {
    let (gate, _) = gate(Duration::from_secs(5), 65_536);
    let result = call(&gate, "test_panic", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("failed unexpectedly"),
        "{}",
        text(&result)
    );
    let next = call(&gate, "test_huge", json!({ "rows": 1 })).await;
    assert_eq!(next.is_error, Some(false));
}

#[tokio::test]
async fn a_tool_error_reaches_the_caller_verbatim() {
    let (gate, _) = gate(Duration::from_secs(5), 65_536);
    let result = call(&gate, "test_fail", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(text(&result), "no such widget `w1`; list widgets first");
}

#[tokio::test]
async fn arguments_of_the_wrong_type_name_the_field() {
    let (gate, finished) = gate(Duration::from_secs(5), 65_536);
    let result = call(&gate, "test_slow", json!({ "milliseconds": "soon" })).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.starts_with("invalid argument `milliseconds`"),
        "{message}"
    );
    assert_eq!(finished.load(Ordering::SeqCst), 0, "the tool must not run");

    let result = call(&gate, "test_slow", json!({ "milliseconds": 999_999 })).await;
    assert!(
        text(&result).contains("must be between 0 and 60000"),
        "{}",
        text(&result)
    );

    let result = call(&gate, "test_slow", json!({})).await;
    assert!(
        text(&result).contains("missing field `milliseconds`"),
        "{}",
        text(&result)
    );

    let result = call(
        &gate,
        "test_slow",
        json!({ "milliseconds": 1, "extra": true }),
    )
    .await;
    assert!(
        text(&result).contains("unknown field `extra`"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn an_unknown_tool_is_a_protocol_error() {
    let (gate, _) = gate(Duration::from_secs(5), 65_536);
    let error = gate
        .call(Call::new(local_caller(&gate), "no_such_tool", None))
        .await
        .expect_err("unknown tool");
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(error.message, "Unknown tool: no_such_tool");
}

#[tokio::test]
async fn a_cancelled_call_stops_waiting() {
    let (gate, finished) = gate(Duration::from_secs(30), 65_536);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let result = gate
        .call(
            Call::new(
                local_caller(&gate),
                "test_slow",
                arguments(json!({ "milliseconds": 10_000 })),
            )
            .cancelled_by(cancel),
        )
        .await
        .expect("result");
    assert_eq!(result.is_error, Some(true));
    assert_eq!(text(&result), "the call was cancelled");
    assert_eq!(finished.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn draining_waits_for_calls_in_flight_and_refuses_new_ones() {
    let (gate, finished) = gate(Duration::from_secs(30), 65_536);
    let running = tokio::spawn({
        let gate = Arc::clone(&gate);
        async move { call(&gate, "test_slow", json!({ "milliseconds": 300 })).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gate.in_flight(), 1);
    assert!(
        gate.drain(Duration::from_secs(5)).await,
        "the call should finish in time"
    );
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    let result = running.await.expect("join");
    assert_eq!(
        result.is_error,
        Some(false),
        "the in-flight call completes normally"
    );

    let refused = call(&gate, "test_slow", json!({ "milliseconds": 1 })).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("shutting down"),
        "{}",
        text(&refused)
    );
}

#[tokio::test]
async fn draining_gives_up_after_the_grace_period() {
    let (gate, _) = gate(Duration::from_secs(30), 65_536);
    let _running = tokio::spawn({
        let gate = Arc::clone(&gate);
        async move { call(&gate, "test_slow", json!({ "milliseconds": 10_000 })).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    assert!(!gate.drain(Duration::from_millis(100)).await);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A tool of the `operate` tier whose `danger` argument needs `admin`.
struct OperateTool;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OperateArguments {
    #[serde(default)]
    danger: bool,
}

fn operate_declaration() -> &'static Declaration {
    Box::leak(Box::new(
        Declaration::operate(
            Domain::Process,
            "test_operate",
            "Test operate tool",
            "A tool that exists only in the gate tests.",
        )
        .destructive(),
    ))
}

impl Tool for OperateTool {
    type Arguments = OperateArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        static DECLARATION: std::sync::OnceLock<&'static Declaration> = std::sync::OnceLock::new();
        DECLARATION.get_or_init(operate_declaration)
    }
    fn required_tier(&self, arguments: &OperateArguments) -> Option<(Tier, String)> {
        arguments
            .danger
            .then(|| (Tier::Admin, "danger = true".to_string()))
    }
    async fn run(&self, _: OperateArguments, _: ToolContext) -> Result<Rows, ToolError> {
        Ok(Rows {
            count: 1,
            rows: vec!["done".into()],
        })
    }
}

fn policy_gate(config: &str) -> Gate {
    let config = systemmanager::config::parse(config, "test").expect("config");
    let mut registry = Registry::new(config.security.max_tier());
    registry.register(HugeTool);
    registry.register(OperateTool);
    Gate::new(
        registry,
        Arc::new(Policy::from_config(&config)),
        Throttle::from_config(&config.limits),
        Arc::new(AuditLog::disabled()),
        Limits::from(&config.limits),
    )
}

async fn call_as(gate: &Gate, role: &str, name: &str, args: Value) -> CallToolResult {
    let role = gate.policy().role(role).expect("role");
    gate.call(Call::new(
        Arc::new(Caller::stdio(role)),
        name,
        arguments(args),
    ))
    .await
    .expect("known tool")
}

fn listed(gate: &Gate, role: &str) -> Vec<String> {
    let role = gate.policy().role(role).expect("role");
    gate.listing_for(&role)
        .iter()
        .map(|tool| tool.name.to_string())
        .collect()
}

#[tokio::test]
async fn a_viewer_is_refused_an_operate_tool_and_does_not_see_it() {
    let gate = policy_gate("");
    assert_eq!(listed(&gate, "viewer"), ["test_huge"]);
    assert_eq!(listed(&gate, "operator"), ["test_huge", "test_operate"]);
    let result = call_as(&gate, "viewer", "test_operate", json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        text(&result),
        "permission denied: test_operate needs the `operate` tier; role `viewer` grants: read. \
         Nothing was done."
    );
    let result = call_as(&gate, "operator", "test_operate", json!({})).await;
    assert_eq!(result.is_error, Some(false));
}

#[tokio::test]
async fn an_unauthorized_caller_learns_nothing_from_argument_validation() {
    let gate = policy_gate("");
    let result = call_as(&gate, "viewer", "test_operate", json!({ "bogus": 1 })).await;
    assert!(
        text(&result).starts_with("permission denied"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn arguments_that_need_the_admin_tier_are_refused_until_it_is_enabled() {
    let gate = policy_gate("");
    let result = call_as(&gate, "admin", "test_operate", json!({ "danger": true })).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains(
            "needs the `admin` tier (danger = true), which this server's config disables"
        ),
        "{}",
        text(&result)
    );

    let gate = policy_gate("[security]\nadmin_tier = true\n");
    let result = call_as(&gate, "operator", "test_operate", json!({ "danger": true })).await;
    assert!(
        text(&result).contains(
            "needs the `admin` tier (danger = true); role `operator` grants: read, operate"
        ),
        "{}",
        text(&result)
    );
    let result = call_as(&gate, "admin", "test_operate", json!({ "danger": true })).await;
    assert_eq!(result.is_error, Some(false));
}

#[tokio::test]
async fn read_only_mode_registers_no_tool_above_read() {
    let gate = policy_gate("[security]\nread_only = true\n");
    assert_eq!(listed(&gate, "admin"), ["test_huge"]);
    let error = gate
        .call(Call::new(
            Arc::new(Caller::stdio(gate.policy().local_role())),
            "test_operate",
            None,
        ))
        .await
        .expect_err("not registered at all");
    assert_eq!(error.message, "Unknown tool: test_operate");
}

#[tokio::test]
async fn custom_roles_narrow_by_globs() {
    let gate = policy_gate(
        "[roles.reporter]\ntiers = [\"read\", \"operate\"]\nallow = [\"test_*\"]\ndeny = [\"*_operate\"]\n",
    );
    assert_eq!(listed(&gate, "reporter"), ["test_huge"]);
    let result = call_as(&gate, "reporter", "test_operate", json!({})).await;
    assert!(
        text(&result).contains("role `reporter` denies test_operate (deny pattern `*_operate`)"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn an_over_limit_call_is_a_tool_error_that_says_when_to_retry() {
    let gate = policy_gate("[limits.per_identity]\ncalls_per_minute = 1\nburst = 2\n");
    for _ in 0..2 {
        let result = call_as(&gate, "viewer", "test_huge", json!({ "rows": 1 })).await;
        assert_eq!(result.is_error, Some(false));
    }
    let result = call_as(&gate, "viewer", "test_huge", json!({ "rows": 1 })).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.starts_with("rate limit: user:")
            && message.contains("may make 1 calls per minute (role viewer); retry in"),
        "{message}"
    );
    assert!(message.ends_with("s. Nothing was done."), "{message}");
}

/// Counts how often it ran: the proof that a refused change was not made.
struct CountingOperateTool {
    runs: Arc<AtomicUsize>,
}

impl Tool for CountingOperateTool {
    type Arguments = NoArguments;
    type Output = Rows;
    fn declaration(&self) -> &'static Declaration {
        static DECLARATION: std::sync::OnceLock<&'static Declaration> = std::sync::OnceLock::new();
        DECLARATION.get_or_init(|| {
            Box::leak(Box::new(Declaration::operate(
                Domain::Process,
                "test_change",
                "Test change",
                "A change-making tool that exists only in the gate tests.",
            )))
        })
    }
    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Rows, ToolError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(Rows {
            count: 0,
            rows: vec![],
        })
    }
}

/// A gate with test tools and a real audit log at `audit_path`; `audit` adds keys to `[audit]`.
fn audited_gate(
    config: &str,
    audit: &str,
    audit_path: &std::path::Path,
) -> (Gate, Arc<AtomicUsize>) {
    let text = format!(
        "{config}\n[audit]\npath = \"{}\"\n{audit}\n",
        audit_path.display()
    );
    let config = systemmanager::config::parse(&text, "test").expect("config");
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new(config.security.max_tier());
    registry.register(HugeTool);
    registry.register(CountingOperateTool {
        runs: Arc::clone(&runs),
    });
    let audit = AuditLog::open(&config.audit).expect("audit log");
    let gate = Gate::new(
        registry,
        Arc::new(Policy::from_config(&config)),
        Throttle::from_config(&config.limits),
        Arc::new(audit),
        Limits::from(&config.limits),
    );
    (gate, runs)
}

/// The decisions recorded in the audit log (the log's own `started`/`rotated` records left out).
fn records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("audit file")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("record"))
        .filter(|record| record["event"] != "log")
        .collect()
}

#[tokio::test]
async fn every_decision_is_audited_and_changes_are_recorded_before_they_are_made() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("audit.jsonl");
    let (gate, runs) = audited_gate(
        "[limits.per_identity]\nburst = 5\ncalls_per_minute = 1\n",
        "",
        &path,
    );
    let call = |role: &str, tool: &str, args: Value| {
        let role = gate.policy().role(role).expect("role");
        Call::new(Arc::new(Caller::stdio(role)), tool, arguments(args)).with_request_id("7")
    };
    gate.call(call(
        "viewer",
        "test_huge",
        json!({ "rows": 2, "label": "x" }),
    ))
    .await
    .expect("ok");
    gate.call(call("viewer", "test_change", json!({})))
        .await
        .expect("denied");
    gate.call(call("operator", "test_change", json!({})))
        .await
        .expect("changed");
    gate.call(call("operator", "test_huge", json!({ "rows": "many" })))
        .await
        .expect("invalid");
    let _ = gate.call(call("viewer", "no_such_tool", json!({}))).await;
    // One identity (the local user, whatever the role) has used its burst of 5 after this one.
    gate.call(call("viewer", "test_huge", json!({ "rows": 1 })))
        .await
        .expect("limited");
    gate.call(call("viewer", "test_huge", json!({ "rows": 1 })))
        .await
        .expect("limited");

    let log = records(&path);
    let summary: Vec<(String, String, String)> = log
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap_or("").to_string(),
                r["decision"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expected = [
        ("test_huge", "allowed", "ok"),
        ("test_change", "denied", "denied"),
        ("test_change", "allowed", "started"),
        ("test_change", "allowed", "ok"),
        ("test_huge", "allowed", "invalid_arguments"),
        ("no_such_tool", "refused", "unknown_tool"),
        ("test_huge", "allowed", "ok"),
        ("test_huge", "rate_limited", "rate_limited"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let first = &log[0];
    assert_eq!(first["seq"], 2, "after the log's own `started` record");
    assert_eq!(first["event"], "call");
    assert_eq!(first["role"], "viewer");
    assert_eq!(first["transport"], "stdio");
    assert_eq!(first["request_id"], "7");
    assert_eq!(first["tier"], "read");
    assert_eq!(first["args"], json!({ "rows": 2, "label": "x" }));
    assert!(
        first["identity"]
            .as_str()
            .expect("identity")
            .starts_with("user:")
    );
    assert!(first["duration_us"].is_u64() && first["bytes"].as_u64() > Some(0));
    assert!(
        log[1]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("permission denied")
    );
    assert_eq!(log[2]["tier"], "operate");
    assert!(
        log[2].get("duration_us").is_none(),
        "a started record has no duration yet"
    );
    assert!(
        log[7]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("rate limit")
    );
    let report = systemmanager::audit::verify::verify_files(&[path]).expect("verify");
    assert!(report.is_ok(), "{report}");
}

#[tokio::test]
async fn when_the_audit_log_cannot_be_written_calls_are_refused() {
    let (gate, runs) = audited_gate("", "", std::path::Path::new("/dev/full"));
    let role = gate.policy().role("operator").expect("operator");
    let caller = Arc::new(Caller::stdio(role));

    let change = gate
        .call(Call::new(Arc::clone(&caller), "test_change", None))
        .await
        .expect("result");
    assert_eq!(change.is_error, Some(true));
    assert!(
        text(&change).starts_with("refused: the audit log cannot be written"),
        "{}",
        text(&change)
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "a change that cannot be recorded is not made"
    );

    let read = gate
        .call(Call::new(
            caller,
            "test_huge",
            arguments(json!({ "rows": 1 })),
        ))
        .await
        .expect("result");
    assert_eq!(read.is_error, Some(true));
    assert!(
        text(&read).starts_with("refused: the answer was withheld"),
        "{}",
        text(&read)
    );
    assert!(
        read.structured_content.is_none(),
        "nothing read may leave unrecorded"
    );
}

#[tokio::test]
async fn with_fail_closed_off_calls_go_on_when_the_log_fails() {
    let (gate, runs) = audited_gate("", "fail_closed = false", std::path::Path::new("/dev/full"));
    let role = gate.policy().role("operator").expect("operator");
    let result = gate
        .call(Call::new(
            Arc::new(Caller::stdio(role)),
            "test_change",
            None,
        ))
        .await
        .expect("result");
    assert_eq!(result.is_error, Some(false));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
