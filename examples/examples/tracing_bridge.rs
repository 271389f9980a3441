//! `tracing` spans in lstrace traces: an axum service behind tower-http's `TraceLayer`.
//!
//! Most of the libraries a service stands on (hyper, tower-http, sqlx, the AWS SDK, ...) emit
//! `tracing` spans and events. With the feature `tracing`, `lstrace::bridge::tracing::layer()` records
//! them in the same traces as `#[traced]` functions:
//!
//! - a client calls the service with [`TracedRequestBuilder::send_traced`], whose headers
//!   carry the trace;
//! - lstrace's [`TraceLayer`] continues it with a server span; tower-http's `TraceLayer`
//!   (inside it) opens its `request` span, a `tracing` span, as a child;
//! - the handler is `#[traced]`; it calls a `#[tracing::instrument]` function (the kind a
//!   database driver has), which calls a `#[traced]` one: they nest, one trace throughout;
//! - `tracing` events (tower-http's "finished processing request", the handler's own) are
//!   logs on the span they happened in.
//!
//! **Layer order**: lstrace's `TraceLayer` goes outside tower-http's (in axum, the later
//! `.layer(..)` call), so that it reads the incoming headers before tower-http's span
//! starts: that span then joins the caller's trace instead of starting its own.
//!
//! ```sh
//! cargo run -p lstrace-examples --example tracing_bridge
//! ```
//!
//! It prints what `fmt` logged, then the trace tree an embedded local satellite received.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use lstrace::http::{TraceLayer, TracedRequestBuilder};
use lstrace::satellite::LocalSatellite;
use lstrace::testing::tree::TreeStyle;
use lstrace::{traced, Options};
use std::error::Error;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse};
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The spans of one call: `call_service`, its client span, the server span, tower-http's
/// `request`, `greet`, `load_profile`, `query`.
const SPANS_PER_CALL: usize = 7;

/// `tracing`'s subscriber: `fmt` on the terminal (INFO and up) and the bridge (everything).
/// Once per process; later calls (tests) find it installed.
fn init_tracing() {
    let _already_installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_filter(LevelFilter::INFO),
        )
        .with(lstrace::bridge::tracing::layer())
        .try_init();
}

/// The service: tower-http's `TraceLayer` inside lstrace's.
fn app() -> Router {
    Router::new()
        .route("/hello/{user}", get(greet))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(TraceLayer::new())
}

/// The handler: a `#[traced]` function.
#[traced]
async fn greet(user: Path<String>) -> String {
    let profile = load_profile(&user).await;
    tracing::info!(user = %user.0, "greeted");
    format!("hello {profile}")
}

/// A function instrumented the `tracing` way, as a database client's are.
#[tracing::instrument(fields(otel.kind = "client", db.system = "sqlite"))]
async fn load_profile(user: &str) -> String {
    query().await;
    format!("{user} (member since 2021)")
}

/// Where the query would run.
#[traced(kind = client)]
async fn query() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

/// The client's side of the call: a span of its own, and a client span whose headers carry it.
#[traced]
async fn call_service(url: String) -> reqwest::Result<String> {
    reqwest::Client::new()
        .get(url)
        .send_traced()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// Serves the app on 127.0.0.1, calls it once, stops it, and flushes every span to
/// `satellite`. Returns the answer.
async fn run(satellite: &LocalSatellite) -> Result<String, Box<dyn Error>> {
    init_tracing();
    let tracer = lstrace::init(
        Options::new("local-development-token")
            .collector_url(satellite.url())
            .component_name("tracing_bridge"),
    )?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}/hello/ann", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let answer = call_service(url).await?;
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving).await???;
    let report = tracer.close_async(Duration::from_secs(10)).await;
    if !satellite.wait_for_spans(SPANS_PER_CALL, Duration::from_secs(10)) {
        return Err(format!(
            "the local satellite did not receive every span ({report:?}):\n{}",
            satellite.tree()
        )
        .into());
    }
    Ok(answer)
}

#[tokio::main]
async fn main() -> ExitCode {
    let satellite = match LocalSatellite::start() {
        Ok(satellite) => satellite,
        Err(e) => {
            eprintln!("tracing_bridge could not start a local satellite: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&satellite).await {
        Ok(answer) => println!("\nThe service answered: {answer}"),
        Err(e) => {
            eprintln!("tracing_bridge failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let tree = satellite.tree_with(TreeStyle::default().with_durations(true).with_logs(true));
    println!("\nThe local satellite received this trace:\n\n{tree}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::{run, SPANS_PER_CALL};
    use lstrace::satellite::LocalSatellite;
    use lstrace::testing::tree::TreeStyle;
    use std::collections::HashSet;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tower_http_spans_and_traced_spans_make_one_trace() {
        let satellite = LocalSatellite::start().unwrap();
        let answer = run(&satellite).await.unwrap();
        assert_eq!(answer, "hello ann (member since 2021)");

        let spans = satellite.spans();
        assert_eq!(spans.len(), SPANS_PER_CALL, "{}", satellite.tree());
        let trace_ids: HashSet<u128> = spans.iter().map(|span| span.trace_id).collect();
        assert_eq!(trace_ids.len(), 1, "{}", satellite.tree());

        let tree = satellite.tree();
        let lines: Vec<&str> = tree.lines().collect();
        let names: Vec<&str> = lines
            .iter()
            .map(|line| line.split(" [").next().unwrap_or(line))
            .collect();
        assert_eq!(
            names,
            [
                "call_service",
                "  HTTP GET",
                "    HTTP GET",
                "      request",
                "        greet",
                "          load_profile",
                "            query",
            ],
            "{tree}"
        );
        assert!(
            lines[3].contains("method=GET")
                && lines[3].contains("target=tower_http::trace::make_span")
                && lines[3].contains("uri=/hello/ann"),
            "{tree}"
        );
        assert!(
            lines[5].contains("db.system=sqlite")
                && lines[5].contains("span.kind=client")
                && lines[5].contains("user=ann"),
            "{tree}"
        );
        let with_logs = satellite.tree_with(TreeStyle::default().with_logs(true));
        assert!(
            with_logs.contains("message=finished processing request"),
            "{with_logs}"
        );
        assert!(
            with_logs.contains("message=greeted, user=ann"),
            "{with_logs}"
        );
    }
}
