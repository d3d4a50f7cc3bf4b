//! stdio figures for `scripts/bench.sh`: start-up (process start to the `initialize` answer),
//! resident memory when idle, tool and `tools/list` latency over a few hundred sequential
//! calls, and what the background samplers cost while they run.
//!
//! Run through the bench script, or directly:
//! `cargo bench --bench stdio -- [--command "PROGRAM ARGS"] [--tool NAME] [--arguments JSON]
//! [--starts N] [--calls N] [--each-read-tool] [--sampler-seconds N]`. The defaults measure
//! `target/release/systemmanager serve` and its `system_overview`; `--each-read-tool` measures
//! every read tool in turn (each warm: the samplers run from the first call); the options let
//! the same driver measure a peer server side by side. `--sampler-seconds N` then leaves the
//! server idle for N seconds, its samplers still running (they stop a minute after the last
//! question), and reports the CPU it used. Prints figures; asserts nothing (the tests check
//! correctness, this measures).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Calls measured per tool unless `--calls N` says otherwise (slow tools, such as a content
/// search over 100 MB, take fewer); a tenth as many warm up first.
const CALLS: usize = 500;

/// Every read tool with the arguments a first question would carry.
const READ_TOOL_CALLS: &[(&str, &str)] = &[
    ("system_overview", "{}"),
    ("cpu_usage", "{}"),
    ("memory_usage", "{}"),
    ("disk_usage", "{}"),
    ("disk_io", "{}"),
    ("network_interfaces", "{}"),
    ("network_connections", "{}"),
    ("network_routes", "{}"),
    ("hardware_info", "{}"),
    ("process_list", "{}"),
    ("process_list", r#"{"limit":500}"#),
    ("process_get", r#"{"pid":1}"#),
    ("process_tree", "{}"),
];

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Server {
    fn spawn(command: &[String]) -> Self {
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .env("RUST_LOG", "warn")
            .env_remove("SYSTEMMANAGER_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", command[0]));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
            line: String::new(),
        }
    }

    fn request(&mut self, message: &str) -> &str {
        self.stdin.write_all(message.as_bytes()).expect("write");
        self.stdin.write_all(b"\n").expect("write");
        self.stdin.flush().expect("flush");
        self.line.clear();
        self.stdout.read_line(&mut self.line).expect("read");
        assert!(
            self.line.contains("\"result\""),
            "unexpected answer: {}",
            self.line
        );
        &self.line
    }

    fn notify(&mut self, message: &str) {
        self.stdin.write_all(message.as_bytes()).expect("write");
        self.stdin.write_all(b"\n").expect("write");
        self.stdin.flush().expect("flush");
    }

    /// CPU time (user + system) the server has used, from /proc/PID/stat.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc/PID/stat");
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        Duration::from_secs_f64(ticks as f64 / 100.0)
    }

    /// Resident and peak resident memory in KiB, from /proc.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

fn latency(server: &mut Server, name: &str, message: &str, calls: usize) {
    // A label that tells two calls of one tool apart by their arguments.
    let label = match message.split_once(r#""arguments":"#) {
        Some((_, arguments)) if !arguments.starts_with("{}") => {
            format!(
                "{name} {}",
                arguments.trim_end_matches("}}}").trim_end_matches('}')
            ) + "}"
        }
        _ => name.to_string(),
    };
    let name = label.as_str();
    for _ in 0..calls.div_ceil(10) {
        server.request(message);
    }
    let mut samples = Vec::with_capacity(calls);
    let mut bytes = 0;
    for _ in 0..calls {
        let started = Instant::now();
        bytes = server.request(message).len();
        samples.push(started.elapsed());
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / calls as u32;
    println!(
        "stdio {name:<28} p50 {:>7}  p99 {:>7}  mean {:>7}  max {:>7}  ({calls} calls, {bytes} bytes/answer)",
        micros(percentile(&samples, 0.50)),
        micros(percentile(&samples, 0.99)),
        micros(mean),
        micros(samples[samples.len() - 1]),
    );
}

struct Options {
    command: Vec<String>,
    tool: String,
    arguments: String,
    starts: usize,
    each_read_tool: bool,
    sampler_seconds: u64,
    calls: usize,
}

fn options() -> Options {
    let mut options = Options {
        command: vec!["target/release/systemmanager".into(), "serve".into()],
        tool: "system_overview".into(),
        arguments: "{}".into(),
        starts: 50,
        each_read_tool: false,
        sampler_seconds: 0,
        calls: CALLS,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--command" => {
                options.command = value().split_whitespace().map(String::from).collect();
            }
            "--tool" => options.tool = value(),
            "--arguments" => options.arguments = value(),
            "--starts" => options.starts = value().parse().expect("--starts N"),
            "--each-read-tool" => options.each_read_tool = true,
            "--calls" => options.calls = value().parse().expect("--calls N"),
            "--sampler-seconds" => {
                options.sampler_seconds = value().parse().expect("--sampler-seconds N")
            }
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    options
}

fn main() {
    let Options {
        command,
        tool,
        arguments,
        starts: start_count,
        each_read_tool,
        sampler_seconds,
        calls: call_count,
    } = options();
    println!("command: {}", command.join(" "));
    let processes = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    println!("processes on the machine: {processes}");

    // Start-up: from spawning the process to reading its `initialize` answer.
    if start_count > 0 {
        let mut starts = Vec::with_capacity(start_count);
        for _ in 0..start_count {
            let started = Instant::now();
            let mut server = Server::spawn(&command);
            server.request(INITIALIZE);
            starts.push(started.elapsed());
            server.stop();
        }
        starts.sort();
        println!(
            "stdio start-up to initialize answer: p50 {}  min {}  max {}  ({start_count} starts)",
            millis(percentile(&starts, 0.50)),
            millis(starts[0]),
            millis(starts[starts.len() - 1]),
        );
    }

    let mut server = Server::spawn(&command);
    server.request(INITIALIZE);
    server.notify(INITIALIZED);
    std::thread::sleep(Duration::from_millis(500));
    let (rss, _) = server.memory_kib();
    println!(
        "stdio idle RSS after initialize: {:.1} MiB",
        rss as f64 / 1024.0
    );

    let call = |tool: &str, arguments: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        )
    };
    let calls: Vec<(&str, &str)> = if each_read_tool {
        READ_TOOL_CALLS.to_vec()
    } else {
        vec![(tool.as_str(), arguments.as_str())]
    };
    // Warm the samplers: each sampled tool's first call starts its sampler, which has two
    // readings (a rate to answer from) one interval later. Measured calls come after that.
    for (tool, arguments) in &calls {
        server.request(&call(tool, arguments));
    }
    std::thread::sleep(Duration::from_millis(2200));
    for (tool, arguments) in &calls {
        latency(&mut server, tool, &call(tool, arguments), call_count);
    }
    latency(
        &mut server,
        "tools/list",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        CALLS,
    );
    let (rss, peak) = server.memory_kib();
    println!(
        "stdio RSS after {} calls: {:.1} MiB (peak {:.1} MiB)",
        calls.len() * (call_count + call_count.div_ceil(10)) + CALLS + CALLS / 10,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    if sampler_seconds > 0 {
        // Every sampled tool once, so each sampler runs; then nothing but the samplers.
        for (tool, arguments) in [
            ("cpu_usage", "{}"),
            ("disk_io", "{}"),
            ("network_interfaces", "{}"),
            ("process_list", "{}"),
        ] {
            server.request(&call(tool, arguments));
        }
        std::thread::sleep(Duration::from_secs(1));
        let before = server.cpu_time();
        std::thread::sleep(Duration::from_secs(sampler_seconds));
        let used = server.cpu_time().saturating_sub(before);
        println!(
            "samplers running, no calls: {:.2}% of one core over {sampler_seconds} s \
             ({} ms of CPU)",
            used.as_secs_f64() * 100.0 / sampler_seconds as f64,
            used.as_millis()
        );
    }
    server.stop();
}
