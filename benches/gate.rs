//! What the security of the gate costs per call, in-process: checking a bearer token, the
//! authorization decision, admission (rate limits), writing the audit record, and a whole gate
//! call of a tool that does nothing — with all of that, and with the audit log off and no token
//! to check. Run by `scripts/bench.sh`, or `cargo bench --bench gate`. Prints figures only.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use systemmanager::access::Caller;
use systemmanager::audit::{AuditLog, Decision, Entry};
use systemmanager::auth::Authenticator;
use systemmanager::auth::tokens::{self, TokenStore};
use systemmanager::config::{self, Config};
use systemmanager::gate::{Call, Gate, Limits, Policy, Throttle};
use systemmanager::tool::{
    Declaration, Domain, NoArguments, Registry, Render, Tier, Tool, ToolContext, ToolError,
};

const ROUNDS: usize = 20_000;

static NOTHING: Declaration = Declaration::read(
    Domain::System,
    "bench_nothing",
    "Nothing",
    "Does nothing; measures the gate around it.",
);

#[derive(Serialize, JsonSchema)]
struct Empty {}

impl Render for Empty {
    fn render_text(&self) -> String {
        String::new()
    }
}

struct NothingTool;

impl Tool for NothingTool {
    type Arguments = NoArguments;
    type Output = Empty;
    fn declaration(&self) -> &'static Declaration {
        &NOTHING
    }
    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Empty, ToolError> {
        Ok(Empty {})
    }
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn measure(mut once: impl FnMut()) -> Duration {
    for _ in 0..1_000 {
        once();
    }
    p50((0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            once();
            started.elapsed()
        })
        .collect())
}

fn nanos(duration: Duration) -> String {
    format!("{:.2} µs", duration.as_nanos() as f64 / 1000.0)
}

fn gate(config: &Config, audit: AuditLog) -> Gate {
    let mut registry = Registry::new(Tier::Admin);
    registry.register(NothingTool);
    Gate::new(
        registry,
        Arc::new(Policy::from_config(config)),
        Throttle::from_config(&config.limits),
        Arc::new(audit),
        Limits::from(&config.limits),
    )
}

fn main() {
    let directory = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[security]\ntoken_file = \"{0}/tokens.json\"\n[audit]\npath = \"{0}/audit.jsonl\"\n\
         [limits]\nmax_concurrent_calls = 100000\n[limits.per_identity]\n\
         calls_per_minute = 1000000000\nburst = 1000000\nmax_concurrent = 100000\n",
        directory.path().display()
    );
    let config = config::parse(&text, "bench").expect("config");
    let policy = Arc::new(Policy::from_config(&config));
    let (secret, _) =
        tokens::create(&config.security.token_file(), "bench", "operator", None).expect("token");
    let store = Arc::new(TokenStore::open(&config.security.token_file()).expect("store"));
    let audit = Arc::new(AuditLog::open(&config.audit).expect("audit"));
    let authenticator = Authenticator::new(store, Arc::clone(&policy), Arc::clone(&audit));
    let role = policy.role("operator").expect("role");
    let caller = Arc::new(Caller::stdio(Arc::clone(&role)));

    println!("gate security, p50 of {ROUNDS} rounds each:");
    let authenticate = measure(|| {
        black_box(authenticator.bearer(black_box(&secret)).is_ok());
    });
    println!(
        "  bearer token check (SHA-256, constant-time compare) {:>10}",
        nanos(authenticate)
    );
    let authorize = measure(|| {
        black_box(policy.authorize(&role, &NOTHING, Tier::Read, None).is_ok());
    });
    println!(
        "  authorization decision                              {:>10}",
        nanos(authorize)
    );
    let throttle = Throttle::from_config(&config.limits);
    let admit = measure(|| {
        black_box(throttle.admit(&caller).is_ok());
    });
    println!(
        "  admission (rate limit, concurrency)                 {:>10}",
        nanos(admit)
    );
    let entry = Entry::call(&caller, Decision::Allowed, "ok");
    let record = measure(|| {
        black_box(audit.record(&entry).is_ok());
    });
    println!(
        "  audit record (hash chain, one append)               {:>10}",
        nanos(record)
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let audited = gate(&config, AuditLog::open(&config.audit).expect("audit"));
    let unaudited = gate(&config, AuditLog::disabled());
    let call = |gate: &Gate, with_token: bool| {
        let gate_call = || {
            if with_token {
                black_box(authenticator.bearer(&secret).is_ok());
            }
            runtime.block_on(gate.call(Call::new(Arc::clone(&caller), "bench_nothing", None)))
        };
        measure(|| {
            black_box(gate_call().is_ok());
        })
    };
    let bare = call(&unaudited, false);
    let full = call(&audited, true);
    println!(
        "  whole gate call of a no-op tool, no token, audit off {:>9}",
        nanos(bare)
    );
    println!(
        "  whole gate call of a no-op tool, token + audit      {:>10}",
        nanos(full)
    );
    println!(
        "  => authentication + audit add                       {:>10} per call",
        nanos(full.saturating_sub(bare))
    );
}
