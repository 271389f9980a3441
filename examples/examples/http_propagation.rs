//! Propagation over HTTP: one trace through two services.
//!
//! Two services run on 127.0.0.1: `frontend` answers `GET /checkout/{customer}/{sku}` by
//! asking `backend` for the price (`GET /prices/{sku}`).
//!
//! - Both serve through [`TraceLayer`]: every request runs inside a server (entry) span,
//!   named here after the service and the route.
//! - The frontend calls the backend with [`TracedRequestBuilder::send_traced`]: a client
//!   (exit) span, whose context goes out in the request's headers (`traceparent`,
//!   `ot-tracer-*`, `x-b3-*`, and the baggage).
//! - The backend's layer reads those headers and continues the caller's trace: its server
//!   span is a child of the frontend's client span.
//! - The handlers call `#[traced]` functions, whose spans nest under the request's span.
//!
//! ```sh
//! cargo run -p lstrace-examples --example http_propagation
//! ```
//!
//! It prints the trace tree an embedded local satellite received. What to look at:
//!
//! - it is one tree: `backend GET /prices/{sku}` sits under the frontend's `HTTP GET` client
//!   span, although it was extracted from headers, not handed over in memory;
//! - every span carries one trace id (the last line);
//! - `customer=ann` on `lookup_price`: baggage set in the frontend, read in the backend;
//! - the durations: the client span covers the backend's server span, which covers
//!   `lookup_price`.
//!
//! Both services live in this one process and report through one tracer. In production each
//! runs in its own process with its own `lstrace::init`; the headers are all that connects
//! them, here as there.

use axum::extract::{MatchedPath, Path, State};
use axum::http::{request, StatusCode};
use axum::routing::get;
use axum::Router;
use lstrace::http::{TraceLayer, TracedRequestBuilder};
use lstrace::satellite::{LocalSatellite, ReceivedSpan};
use lstrace::testing::tree::TreeStyle;
use lstrace::{traced, Options};
use std::error::Error;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The spans one checkout makes: the frontend's server span, `checkout`, the client span, the
/// backend's server span, `lookup_price`.
const SPANS_PER_CHECKOUT: usize = 5;

/// Generous: a server stops as soon as its connections are idle.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the backend sells, in cents.
const PRICES: [(&str, u64); 2] = [("green-tea", 450), ("oolong", 720)];

/// A service serving on 127.0.0.1 (a free port) until [`Service::shutdown`].
struct Service {
    name: &'static str,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl Service {
    /// Serves `router` with a server span around every request, named `{name} {method} {route}`.
    async fn start(name: &'static str, router: Router) -> std::io::Result<Service> {
        let app = router
            .layer(TraceLayer::new().with_operation_name(move |request| span_name(name, request)));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means stop too.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Service {
            name,
            addr,
            stop,
            serving,
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets requests in flight finish, and waits (within
    /// [`SHUTDOWN_TIMEOUT`]) until the server has stopped.
    async fn shutdown(self) -> Result<(), Box<dyn Error>> {
        // The server may have stopped already (and dropped the receiver): then it is done.
        let _ = self.stop.send(());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, self.serving).await {
            Ok(served) => Ok(served??),
            Err(_) => {
                Err(format!("the {} did not stop within {SHUTDOWN_TIMEOUT:?}", self.name).into())
            }
        }
    }
}

/// `frontend GET /checkout/{customer}/{sku}`: the route, not the path, which holds ids.
fn span_name(service: &str, request: &request::Parts) -> String {
    match request.extensions.get::<MatchedPath>() {
        Some(route) => format!("{service} {} {}", request.method, route.as_str()),
        None => format!("{service} {} (no route)", request.method),
    }
}

/// What the frontend's handlers share.
#[derive(Clone)]
struct Frontend {
    client: reqwest::Client,
    backend_url: String,
}

async fn checkout_handler(
    State(frontend): State<Frontend>,
    Path((customer, sku)): Path<(String, String)>,
) -> Result<String, (StatusCode, String)> {
    checkout(&frontend, &customer, &sku)
        .await
        .map_err(|e| (StatusCode::BAD_GATEWAY, e.to_string()))
}

/// Runs under the frontend's server span; the backend's spans end up under it.
#[traced(args(customer, sku), err)]
async fn checkout(frontend: &Frontend, customer: &str, sku: &str) -> reqwest::Result<String> {
    // Baggage travels with the trace, to this span's children and the services they call.
    lstrace::set_baggage_item("customer", customer);
    let price = frontend
        .client
        .get(format!("{}/prices/{sku}", frontend.backend_url))
        .send_traced()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(format!("{customer} pays {price} cents for {sku}"))
}

async fn price_handler(Path(sku): Path<String>) -> Result<String, StatusCode> {
    match lookup_price(&sku).await {
        Some(price) => Ok(price.to_string()),
        None => Err(StatusCode::NOT_FOUND),
    }
}

/// Runs under the backend's server span, in the frontend's trace.
#[traced(args(sku), ret)]
async fn lookup_price(sku: &str) -> Option<u64> {
    // Where a database query would be.
    tokio::time::sleep(Duration::from_millis(2)).await;
    if let Some(customer) = lstrace::baggage_item("customer") {
        lstrace::set_tag("customer", customer);
    }
    PRICES
        .iter()
        .find(|(s, _)| *s == sku)
        .map(|(_, price)| *price)
}

/// What one run of the example produced.
struct Checkout {
    /// The frontend's answer.
    answer: String,
    /// Where the frontend listened.
    frontend: SocketAddr,
    /// Where the backend listened: the client span's `http.url` names it.
    backend: SocketAddr,
}

/// Starts both services, checks out once through them, stops them, and flushes every span to
/// `satellite`.
async fn run(satellite: &LocalSatellite) -> Result<Checkout, Box<dyn Error>> {
    // The local satellite accepts any token.
    // Closes the tracer however `run` ends (an early `?` included).
    let tracer = lstrace::init(
        Options::new("local-development-token")
            .collector_url(satellite.url())
            .component_name("http_propagation"),
    )?
    .shutdown_guard(Duration::from_secs(10));

    let backend = Service::start(
        "backend",
        Router::new().route("/prices/{sku}", get(price_handler)),
    )
    .await?;
    let frontend = Service::start(
        "frontend",
        Router::new()
            .route("/checkout/{customer}/{sku}", get(checkout_handler))
            .with_state(Frontend {
                client: reqwest::Client::new(),
                backend_url: backend.url(),
            }),
    )
    .await?;

    // A plain request, as from a browser: it carries no trace context, so the frontend's
    // server span starts the trace.
    let answer = reqwest::get(format!("{}/checkout/ann/green-tea", frontend.url()))
        .await?
        .error_for_status()?
        .text()
        .await?;

    let (frontend_addr, backend_addr) = (frontend.addr, backend.addr);
    frontend.shutdown().await?;
    backend.shutdown().await?;
    let report = tracer.close_async(Duration::from_secs(10)).await;
    if !satellite.wait_for_spans(SPANS_PER_CHECKOUT, Duration::from_secs(10)) {
        let received = satellite.tree();
        return Err(format!(
            "the local satellite did not receive every span ({report:?}):\n{received}"
        )
        .into());
    }
    Ok(Checkout {
        answer,
        frontend: frontend_addr,
        backend: backend_addr,
    })
}

/// The trace id every span carries, or `None` when they do not all carry the same one.
fn shared_trace_id(spans: &[ReceivedSpan]) -> Option<u128> {
    let mut trace_ids = spans.iter().map(|span| span.trace_id);
    let first = trace_ids.next()?;
    trace_ids.all(|id| id == first).then_some(first)
}

#[tokio::main]
async fn main() -> ExitCode {
    let satellite = match LocalSatellite::start() {
        Ok(satellite) => satellite,
        Err(e) => {
            eprintln!("http_propagation could not start a local satellite: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checkout = match run(&satellite).await {
        Ok(checkout) => checkout,
        Err(e) => {
            eprintln!("http_propagation failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "frontend on {}, backend on {}; the frontend answered: {}",
        checkout.frontend, checkout.backend, checkout.answer
    );
    let tree = satellite.tree_with(TreeStyle::default().with_durations(true).with_logs(true));
    println!("\nThe local satellite received this trace:\n\n{tree}");
    let spans = satellite.spans();
    match shared_trace_id(&spans) {
        Some(trace_id) => {
            println!(
                "Trace id {trace_id:032x}: all {} spans share it, frontend and backend alike.",
                spans.len()
            );
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("The spans do not share one trace id: propagation failed.");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{run, shared_trace_id, SPANS_PER_CHECKOUT};
    use lstrace::satellite::{LocalSatellite, ReceivedSpan, SpanReference};
    use lstrace::{Relationship, SpanKind};
    use std::collections::HashSet;

    fn of_kind(spans: &[ReceivedSpan], kind: SpanKind) -> Vec<&ReceivedSpan> {
        spans
            .iter()
            .filter(|span| span.kind == Some(kind))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_trace_runs_through_frontend_and_backend() {
        let satellite = LocalSatellite::start().unwrap();
        let checkout = run(&satellite).await.unwrap();
        assert_eq!(checkout.answer, "ann pays 450 cents for green-tea");

        let spans = satellite.spans();
        assert_eq!(spans.len(), SPANS_PER_CHECKOUT, "{}", satellite.tree());
        let trace_ids: HashSet<u128> = spans.iter().map(|span| span.trace_id).collect();
        assert_eq!(trace_ids.len(), 1, "{}", satellite.tree());
        assert_eq!(
            shared_trace_id(&spans),
            trace_ids.into_iter().next(),
            "what the example prints"
        );

        // Everything here runs one step after another, so the whole tree is deterministic.
        let expected = [
            "frontend GET /checkout/{customer}/{sku} [http.method=GET, http.status_code=200, http.url=/checkout/ann/green-tea, span.kind=server]".to_owned(),
            "  checkout [customer=ann, sku=green-tea]".to_owned(),
            format!("    HTTP GET [http.method=GET, http.status_code=200, http.url=http://{}/prices/green-tea, span.kind=client]", checkout.backend),
            "      backend GET /prices/{sku} [http.method=GET, http.status_code=200, http.url=/prices/green-tea, span.kind=server]".to_owned(),
            "        lookup_price [customer=ann, return=450, sku=green-tea]".to_owned(),
        ];
        assert_eq!(satellite.tree(), expected.map(|line| line + "\n").concat());

        // The backend's server span continues the frontend's client span, by its headers.
        let [client] = of_kind(&spans, SpanKind::Client)[..] else {
            panic!("one client span: {}", satellite.tree());
        };
        let backend = of_kind(&spans, SpanKind::Server)
            .into_iter()
            .find(|span| span.name.starts_with("backend "))
            .expect("the backend's server span");
        let [SpanReference {
            relationship,
            span_id,
            ..
        }] = backend.references[..]
        else {
            panic!("one parent: {backend}");
        };
        assert_eq!(relationship, Relationship::ChildOf);
        assert_eq!(span_id, client.span_id);
    }
}
