//! The lstrace quickstart: trace a small async workload and see what the collector received.
//!
//! With no `LS_ACCESS_TOKEN` set, it starts a local satellite on 127.0.0.1 (no account
//! needed), reports to it, and prints the trace tree the satellite received. With
//! `LS_ACCESS_TOKEN` set (and optionally `LS_COLLECTOR_URL`, `LS_SERVICE_NAME`), it reports
//! to that collector instead.
//!
//! ```sh
//! cargo run -p lstrace-examples --example quickstart
//! ```

use lstrace::satellite::LocalSatellite;
use lstrace::testing::tree::TreeStyle;
use lstrace::{traced, Options};
use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

/// The spans one checkout makes: the handler, the cart, the price, the receipt task, the
/// failed payment.
const SPANS_PER_CHECKOUT: usize = 5;

#[derive(Debug)]
enum PaymentError {
    Declined { amount: u64 },
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentError::Declined { amount } => write!(f, "card declined for {amount} cents"),
        }
    }
}

impl std::error::Error for PaymentError {}

/// An entry span: the request as the service received it.
#[traced(kind = server, tags("http.method" = "POST", route = "/checkout"), args(order_id), err)]
async fn handle_checkout(order_id: u64) -> Result<u64, PaymentError> {
    let items = load_cart(order_id).await;
    let total = price(&items);
    lstrace::set_tag("order.total", total);
    // A spawned task does not inherit task-locals: lstrace::spawn hands it the current span.
    let receipt = lstrace::spawn(send_receipt(order_id));
    let charged = charge_card(total).await;
    // Join the receipt task whatever the payment did, so its span is finished before the
    // caller closes the tracer.
    receipt.await.ok();
    charged?;
    Ok(total)
}

#[traced(args(order_id))]
async fn load_cart(order_id: u64) -> Vec<u64> {
    tokio::time::sleep(Duration::from_millis(3)).await;
    lstrace::set_tag("cart.owner", format!("customer-{}", order_id % 7));
    vec![1200, 350, 99]
}

#[traced(ret)]
fn price(items: &[u64]) -> u64 {
    items.iter().sum()
}

#[traced(kind = producer, follows_from, tags(queue = "receipts"))]
async fn send_receipt(order_id: u64) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    lstrace::log([
        ("event", "queued"),
        ("order", if order_id > 0 { "ok" } else { "none" }),
    ]);
}

/// An exit span whose failure is recorded by `err`.
#[traced(kind = client, tags("peer.service" = "payments"), args(amount), err)]
async fn charge_card(amount: u64) -> Result<(), PaymentError> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    Err(PaymentError::Declined { amount })
}

/// Where the spans go: a collector named by the environment, or a local satellite.
enum Destination {
    Collector,
    Local(LocalSatellite),
}

fn destination() -> std::io::Result<Destination> {
    if std::env::var_os("LS_ACCESS_TOKEN").is_some() {
        Ok(Destination::Collector)
    } else {
        LocalSatellite::start().map(Destination::Local)
    }
}

/// Runs the workload and returns the tree the local satellite received (`None` when reporting
/// to a real collector).
async fn run(destination: Destination) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let options = match &destination {
        Destination::Collector => Options::from_env(),
        // The local satellite accepts any token.
        Destination::Local(satellite) => Options::new("local-development-token")
            .collector_url(satellite.url())
            .component_name("quickstart"),
    };
    // Closes the tracer however `run` ends (an early `?` included).
    let tracer = lstrace::init(options)?.shutdown_guard(Duration::from_secs(10));

    match handle_checkout(42).await {
        Ok(total) => println!("checkout charged {total} cents"),
        Err(e) => println!("checkout failed as planned: {e}"),
    }

    let report = tracer.close_async(Duration::from_secs(10)).await;
    println!("{report:?}");
    match destination {
        Destination::Collector => Ok(None),
        Destination::Local(satellite) => {
            if !satellite.wait_for_spans(SPANS_PER_CHECKOUT, Duration::from_secs(10)) {
                return Err("the local satellite did not receive every span".into());
            }
            Ok(Some(satellite.tree_with(
                TreeStyle::default().with_durations(true).with_logs(true),
            )))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let destination = match destination() {
        Ok(destination) => destination,
        Err(e) => {
            eprintln!("quickstart could not start a local satellite: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(destination).await {
        Ok(Some(tree)) => {
            println!("\nThe local satellite received this trace:\n\n{tree}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("Spans were reported to the collector named by LS_COLLECTOR_URL.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{run, Destination};
    use lstrace::satellite::LocalSatellite;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_satellite_receives_the_whole_checkout_trace() {
        let satellite = LocalSatellite::start().unwrap();
        let tree = run(Destination::Local(satellite))
            .await
            .unwrap()
            .expect("a local satellite");
        let mut lines: Vec<&str> = tree
            .lines()
            .filter(|l| !l.trim_start().starts_with("- "))
            .collect();
        assert!(
            lines[0].starts_with("handle_checkout ("),
            "one root: {tree}"
        );
        // The spawned receipt task and the payment run concurrently: their order varies.
        lines.sort_unstable();
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.split(" (").next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "  charge_card",
                "  load_cart",
                "  price",
                "  send_receipt",
                "handle_checkout"
            ],
            "{tree}"
        );
        assert!(tree.contains("error=true"), "{tree}");
        assert!(
            tree.contains("message=card declined for 1649 cents"),
            "{tree}"
        );
        assert!(tree.contains("span.kind=server"), "{tree}");
    }
}
