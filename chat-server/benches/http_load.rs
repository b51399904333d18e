//! HTTP load generator: posts messages to the real chat server on SQLite (durable:
//! `synchronous = FULL`) and on the in-memory store, and the same requests to a bare
//! hyper JSON-echo server, in one run, and prints requests/s, p50/p99 latency and the
//! ratios against their targets: SQLite at least 0.6x the in-memory store's requests/s
//! with a p99 at most 3x its p99 (issue 21). The two chat servers take turns
//! (`HTTP_LOAD_ROUNDS` rounds of memory then SQLite, each a share of the measured time),
//! so a neighbour's load on the shared machine falls on both alike.
//!
//! `cargo bench -p chat-server --bench http_load`
//! Settings (environment): `HTTP_LOAD_CONNECTIONS` (64), `HTTP_LOAD_SECS` (10, per
//! server), `HTTP_LOAD_WARMUP_SECS` (1, per round), `HTTP_LOAD_CONVERSATIONS` (1000),
//! `HTTP_LOAD_ROUNDS` (2); `HTTP_LOAD_ONLY=chat` skips the echo baseline;
//! `BENCH_STORE=memory` or `sqlite` runs that chat server alone (for profiling; no
//! SQLite/memory ratio then).

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Backend, env_or, ms, quantile};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// One request target: a conversation's message route and its visitor token.
struct Target {
    path: String,
    auth: HeaderValue,
}

/// What one load run measured.
struct Stats {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    secs: f64,
    sorted_micros: Vec<u32>,
}

impl Stats {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Starts the bare hyper 1 echo server: a POST answers its own body as JSON.
async fn start_echo(stop: watch::Receiver<bool>) -> SocketAddr {
    let listener = common::listen(0).expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let mut stop_accept = stop.clone();
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => continue,
                },
                _ = stop_accept.changed() => break,
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// `connections` keep-alive connections, one task each, posting for `warmup + secs`;
/// only requests started after the warm-up count.
async fn drive(
    addr: SocketAddr,
    targets: Arc<Vec<Target>>,
    connections: usize,
    warmup: Duration,
    secs: Duration,
    label: String,
) -> Stats {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + secs;
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let text = "Hello, I ordered a blue kettle last week and it still has not arrived. \
                Could you tell me where it is? Order number 4521-88. Thanks!";
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let targets = targets.clone();
        let host = host.clone();
        let label = label.clone();
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::with_capacity(64 * 1024);
            let mut errors = 0usize;
            let mut first_error = None;
            let stream = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(e) => return (micros, 1, Some(format!("connect: {e}"))),
            };
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) =
                match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                    Ok(pair) => pair,
                    Err(e) => return (micros, 1, Some(format!("handshake: {e}"))),
                };
            let conn = tokio::spawn(conn);
            let mut n = 0usize;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                let target = &targets[(c + n * connections) % targets.len()];
                // About 230 bytes, like the baseline's JSON echo.
                let body =
                    format!(r#"{{"body":"{text} #{n}","client_message_id":"{label}-{c}-{n}"}}"#);
                let req = Request::post(target.path.as_str())
                    .header(header::HOST, host.clone())
                    .header(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )
                    .header(header::AUTHORIZATION, target.auth.clone())
                    .body(Full::new(Bytes::from(body)))
                    .expect("request");
                n += 1;
                let outcome = async {
                    sender.ready().await?;
                    let response = sender.send_request(req).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((status, body))
                }
                .await;
                let counted = began >= measure_from;
                match outcome {
                    Ok((status, body)) => {
                        if counted {
                            micros.push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        }
                        if !status.is_success() {
                            errors += usize::from(counted);
                            first_error.get_or_insert_with(|| {
                                format!("{status}: {}", String::from_utf8_lossy(&body))
                            });
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("request: {e}"));
                        break;
                    }
                }
            }
            drop(sender);
            conn.abort();
            (micros, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (micros, e, first) = t.await.expect("a load task");
        all.extend(micros);
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    all.sort_unstable();
    Stats {
        requests: all.len(),
        errors,
        first_error,
        secs: secs.as_secs_f64(),
        sorted_micros: all,
    }
}

impl Stats {
    /// Runs of the same server, one after the other, as one measurement.
    fn merge(runs: Vec<Stats>) -> Stats {
        let mut all = Stats {
            requests: 0,
            errors: 0,
            first_error: None,
            secs: 0.0,
            sorted_micros: Vec::new(),
        };
        for run in runs {
            all.requests += run.requests;
            all.errors += run.errors;
            all.secs += run.secs;
            if all.first_error.is_none() {
                all.first_error = run.first_error;
            }
            all.sorted_micros.extend(run.sorted_micros);
        }
        all.sorted_micros.sort_unstable();
        all
    }

    fn p99(&self) -> u32 {
        quantile(&self.sorted_micros, 0.99)
    }
}

fn print(name: &str, s: &Stats) {
    println!(
        "{name:<34} {:>10.0} req/s   p50 {:>9}   p99 {:>9}   ({} requests, {} errors)",
        s.rps(),
        ms(quantile(&s.sorted_micros, 0.50)),
        ms(quantile(&s.sorted_micros, 0.99)),
        s.requests,
        s.errors
    );
    if let Some(e) = &s.first_error {
        println!("  first error: {}", e.chars().take(300).collect::<String>());
    }
}

/// `a / b` as a ratio, and whether it meets `target` (at least when `at_least`).
fn verdict(a: f64, b: f64, target: f64, at_least: bool) -> String {
    let ratio = a / b.max(f64::MIN_POSITIVE);
    let met = if at_least {
        ratio >= target
    } else {
        ratio <= target
    };
    let sign = if at_least { ">=" } else { "<=" };
    format!(
        "{ratio:.2}x (target {sign} {target}x: {})",
        if met { "met" } else { "NOT met" }
    )
}

/// One chat server under test and the targets it posts to.
struct Subject {
    backend: Backend,
    server: common::ChatServer,
    targets: Arc<Vec<Target>>,
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        println!(
            "http_load is a load generator: run it with `cargo bench -p chat-server --bench http_load`"
        );
        return;
    }
    let connections: usize = env_or("HTTP_LOAD_CONNECTIONS", 64usize).max(1);
    let secs = Duration::from_secs_f64(env_or("HTTP_LOAD_SECS", 10.0f64).clamp(0.5, 600.0));
    let warmup = Duration::from_secs_f64(env_or("HTTP_LOAD_WARMUP_SECS", 1.0f64).clamp(0.0, 60.0));
    let conversations: usize = env_or("HTTP_LOAD_CONVERSATIONS", 1000usize).max(1);
    let rounds: u32 = env_or("HTTP_LOAD_ROUNDS", 2u32).max(1);
    let backends = match Backend::from_env() {
        Some(only) => vec![only],
        None => vec![Backend::Memory, Backend::Sqlite],
    };
    println!("# http_load: POST /v1/conversations/{{id}}/messages");
    println!("machine: {}", common::machine());
    println!("load average at start: {}", common::loadavg());
    for backend in &backends {
        println!("chat-server backend: {}", backend.name());
    }
    println!(
        "{connections} keep-alive HTTP/1.1 connections, {}s measured per server in {rounds} \
         rounds (each after {}s warm-up), {conversations} conversations per server (visitor \
         tokens); servers and load generator each on a 2-worker tokio runtime in this process",
        secs.as_secs_f64(),
        warmup.as_secs_f64()
    );

    let server_rt = common::server_runtime();
    let client_rt = common::runtime(2, "load");

    // The real servers and their conversations.
    let mut subjects = Vec::new();
    for backend in backends {
        let server = server_rt.block_on(common::ChatServer::start_on(0, backend));
        let opened = Instant::now();
        let opened_ids =
            client_rt.block_on(common::open_conversations(server.addr, conversations, 8));
        println!(
            "{:?}: opened {} conversations in {:.1}s",
            backend,
            opened_ids.len(),
            opened.elapsed().as_secs_f64()
        );
        let targets: Arc<Vec<Target>> = Arc::new(
            opened_ids
                .iter()
                .map(|(id, token)| Target {
                    path: format!("/v1/conversations/{id}/messages"),
                    auth: HeaderValue::from_str(&format!("Bearer {token}")).expect("token header"),
                })
                .collect(),
        );
        subjects.push(Subject {
            backend,
            server,
            targets,
        });
    }

    // The baseline: the same requests to a bare hyper echo. `HTTP_LOAD_ONLY=chat` skips it.
    let only_chat = std::env::var("HTTP_LOAD_ONLY").is_ok_and(|v| v == "chat");
    let baseline = if only_chat {
        None
    } else {
        let (stop_echo, echo_stopped) = watch::channel(false);
        let echo_addr = server_rt.block_on(start_echo(echo_stopped));
        let baseline = client_rt.block_on(drive(
            echo_addr,
            subjects[0].targets.clone(),
            connections,
            warmup,
            secs,
            "echo".into(),
        ));
        let _ = stop_echo.send(true);
        Some(baseline)
    };

    let share = secs / rounds;
    let mut runs: Vec<Vec<Stats>> = subjects.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, subject) in subjects.iter().enumerate() {
            let label = format!("round{round}");
            let stats = client_rt.block_on(drive(
                subject.server.addr,
                subject.targets.clone(),
                connections,
                warmup,
                share,
                label,
            ));
            runs[i].push(stats);
            // The store's indexer and checkpoints finish this run's work before the other
            // server's turn, so that it does not run on the next one's time.
            if let Some(store) = &subject.server.sqlite {
                server_rt
                    .block_on(store.wait_for_search_index())
                    .expect("the search index catches up");
            }
        }
    }
    let results: Vec<(Backend, Stats)> = subjects
        .iter()
        .map(|s| s.backend)
        .zip(runs.into_iter().map(Stats::merge))
        .collect();

    if let Some(baseline) = &baseline {
        print("hyper JSON echo (baseline)", baseline);
    }
    for (backend, stats) in &results {
        let name = match backend {
            Backend::Memory => "chat-server, MemoryStore",
            Backend::Sqlite => "chat-server, SQLite (FULL)",
        };
        print(name, stats);
    }
    if let Some(baseline) = &baseline {
        for (backend, stats) in &results {
            println!(
                "{backend:?}/echo: {:.2}x req/s, p99 {:.1}x",
                stats.rps() / baseline.rps().max(f64::MIN_POSITIVE),
                f64::from(stats.p99()) / f64::from(baseline.p99().max(1))
            );
        }
    }
    if let [(Backend::Memory, memory), (Backend::Sqlite, sqlite)] = results.as_slice() {
        println!(
            "durable/in-memory: requests/s {}, p99 {}",
            verdict(sqlite.rps(), memory.rps(), 0.6, true),
            verdict(
                f64::from(sqlite.p99()),
                f64::from(memory.p99().max(1)),
                3.0,
                false
            )
        );
    }
    println!("load average at end: {}", common::loadavg());

    for subject in subjects {
        server_rt.block_on(subject.server.stop());
    }
    client_rt.shutdown_timeout(Duration::from_secs(2));
    server_rt.shutdown_timeout(Duration::from_secs(2));
}
