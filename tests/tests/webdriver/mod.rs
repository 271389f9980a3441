//! A small WebDriver client (the W3C protocol over HTTP, JSON bodies) that drives a headless
//! Chromium through chromedriver: enough for the browser tests, no more.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a wait for the page may take before the test fails: generous, as the machine may
/// be busy; never a timing assertion.
pub(crate) const GENEROUS: Duration = Duration::from_secs(60);

/// The Chromium flags of a reproducible headless run: no sandbox (CI runs as root), no
/// network of its own (no updates, no sync, no QUIC probes).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
];

/// A Chromium session. Dropping it ends the session and stops chromedriver.
pub(crate) struct Browser {
    driver: Child,
    driver_addr: SocketAddr,
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

/// Finds a program: the environment variable `var` if set, else the first of `names` on PATH.
fn find(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session. `None` (with a note on stderr)
    /// when they are not installed, except in CI (`CI=true`), where that is a failure: the
    /// browser tests must not pass by not running.
    pub(crate) async fn start() -> Option<Browser> {
        let chromium = find(
            "LSTRACE_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let chromedriver = find("LSTRACE_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            let message = "the browser test needs Chromium and chromedriver \
                           (apt-get install chromium chromium-driver; .ci/run installs them)";
            if std::env::var("CI").is_ok_and(|ci| ci == "true" || ci == "1") {
                panic!("{message}: not found, and CI must run this test");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        };
        // A free port for chromedriver (it cannot report one it picks itself).
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free local port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));
        let profile =
            std::env::temp_dir().join(format!("lstrace-chromium-{}-{}", std::process::id(), port));
        let mut browser = Browser {
            driver,
            driver_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + GENEROUS;
        loop {
            let ready = browser
                .http
                .get(browser.url("/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", browser.profile.display()));
        let session = browser
            .command(
                reqwest::Method::POST,
                "/session",
                json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    // A busy page (a 10,000-span trace on a loaded machine) may hold its
                    // thread for a while before a script gets to run.
                    "timeouts": { "script": GENEROUS.as_millis() as u64, "pageLoad": GENEROUS.as_millis() as u64 },
                    "goog:chromeOptions": { "binary": chromium, "args": args },
                } } }),
            )
            .await;
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Some(browser)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.driver_addr)
    }

    /// Sends a WebDriver command; its `value`, or a panic with the driver's error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if !body.is_null() {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("WebDriver {path}: {e}: {text}"));
        assert!(status.is_success(), "WebDriver {path}: {status}: {text}");
        value["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.command(
            reqwest::Method::POST,
            &self.session_path("/url"),
            json!({ "url": url }),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its result.
    pub(crate) async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            &self.session_path("/execute/sync"),
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Runs `script` until it returns something other than `null` or `false`, and returns
    /// that; fails after [`GENEROUS`], saying what it waited for.
    pub(crate) async fn wait_for(&self, what: &str, script: &str, args: Value) -> Value {
        eprintln!("waiting for {what}");
        let deadline = Instant::now() + GENEROUS;
        loop {
            let value = self.run(script, args.clone()).await;
            if !value.is_null() && value != Value::Bool(false) {
                return value;
            }
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the first element that `css` selects, as a user would.
    pub(crate) async fn click(&self, css: &str) {
        let element = self
            .command(
                reqwest::Method::POST,
                &self.session_path("/element"),
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned();
        self.command(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{id}/click")),
            json!({}),
        )
        .await;
    }

    /// Saves a screenshot of the window as PNG.
    pub(crate) async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let data = self
            .command(
                reqwest::Method::GET,
                &self.session_path("/screenshot"),
                Value::Null,
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 PNG"))
            .expect("a base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (Chromium quits) over a plain socket: a drop cannot await.
        if !self.session.is_empty() {
            if let Ok(mut stream) = TcpStream::connect_timeout(&self.driver_addr, GENEROUS) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                let _ = write!(
                    stream,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\
                     Connection: close\r\n\r\n",
                    self.session, self.driver_addr
                );
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
