//! A real `galilean` process for tests: a config file in a temporary directory, the
//! binary started with `serve`, its address read from its log, and everything it spawned
//! removed when the test ends.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use galilean_storage::testing::{eventually, eventually_blocking, Lazy};
use serde_json::Value;

/// The token of the admin service every test hub has.
pub const ADMIN_TOKEN: &str = "test-admin-service-token-0123456789";

pub fn galilean_bin() -> &'static str {
    env!("CARGO_BIN_EXE_galilean")
}

pub fn tiny_server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tiny_server")
}

/// TOML string literal.
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

pub struct Hub {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    pub url: String,
    /// Variables the process gets besides the tests' own environment.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Hub {
    /// A hub whose spawner runs `tiny_server`, plus `extra` TOML appended to `[spawner]`
    /// and sections after it.
    pub fn tiny(spawner_extra: &str, rest: &str) -> Hub {
        let spawner = format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n{spawner_extra}",
            toml_str(tiny_server_bin())
        );
        Hub::with(&spawner, rest)
    }

    /// A hub with `[spawner]` body `spawner` and more TOML `rest` (other sections).
    pub fn with(spawner: &str, rest: &str) -> Hub {
        Hub::with_hub("", spawner, rest)
    }

    /// As [`Hub::with`], with more `[hub]` keys.
    pub fn with_hub(hub_extra: &str, spawner: &str, rest: &str) -> Hub {
        Hub::with_hub_env(hub_extra, spawner, rest, &[])
    }

    /// As [`Hub::with_hub`], the process started with the variables `env` set too.
    pub fn with_hub_env(hub_extra: &str, spawner: &str, rest: &str, env: &[(&str, &str)]) -> Hub {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let config = dir.path().join("hub.toml");
        let text = format!(
            "[hub]\nbind_url = \"http://127.0.0.1:0/\"\ndata_dir = {}\n{hub_extra}\n\
             [spawner]\n{spawner}\n\n\
             [[services]]\nname = \"test-admin\"\napi_token = \"{ADMIN_TOKEN}\"\nadmin = true\n\n{rest}\n",
            toml_str(&data.to_string_lossy())
        );
        // `rest` may start a table that must come before [[services]]: let tests put
        // [authenticator] etc. in `rest`; TOML allows tables after arrays of tables.
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("hub.log");
        let mut hub = Hub {
            dir,
            config,
            log,
            url: String::new(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        hub.start();
        hub
    }

    /// Starts (or restarts) the process and waits until it serves.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let before = std::fs::read_to_string(&self.log).unwrap_or_default().len();
        let child = Command::new(galilean_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start galilean");
        self.child = Some(child);
        let url = eventually_blocking("galilean starts", Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let new = &text[before.min(text.len())..];
            if let Some(pos) = new.find("Galilean is running at ") {
                let rest = &new[pos + "Galilean is running at ".len()..];
                let url = rest.split_whitespace().next().unwrap_or("");
                let url = url.trim_end_matches("hub/");
                return Ok(url.trim_end_matches('/').to_owned());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("galilean exited with {status} at start:\n{new}");
                }
            }
            Err(format!("its log:\n{new}"))
        });
        self.url = url;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM and wait for the process to exit (killed, by the drop, when it does not).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status =
            eventually_blocking("galilean stops on SIGTERM", Duration::from_secs(30), || {
                child.try_wait().ok().flatten()
            });
        self.child = None;
        status
    }

    /// Waits, at most `within`, for the process to exit on its own (no signal sent).
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status =
            eventually_blocking("galilean exits", within, || child.try_wait().ok().flatten());
        self.child = None;
        status
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/hub/api{path}", self.url)
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("client")
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client()
            .get(self.api(path))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn admin_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client()
            .request(method, self.api(path))
            .header("Authorization", format!("token {ADMIN_TOKEN}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body)
    }

    /// Store counters from the metrics endpoint: (reads, write commits).
    pub async fn store_counters(&self) -> (u64, u64) {
        let text = self
            .client()
            .get(self.api("/metrics"))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        (
            metric(&text, "galilean_store_reads_total"),
            metric(&text, "galilean_store_write_commits_total"),
        )
    }

    /// Waits until `user`'s `server` is ready, per the API.
    pub async fn wait_ready(&self, user: &str, server: &str, timeout: Duration) -> Value {
        eventually(format!("{user}/{server} is ready"), timeout, || async {
            let (status, model) = self.admin_get(&format!("/users/{user}")).await;
            assert_eq!(status, 200, "{model}");
            let s = &model["servers"][server];
            if s["ready"] == true {
                return Ok(s.clone());
            }
            // the log is read only if the wait fails
            Err(Lazy(move || {
                format!("{model}\nthe hub's log:\n{}", self.log_text())
            }))
        })
        .await
    }
}

pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Kills every process whose working directory is under `root` (the servers a test hub
/// spawned in their home directories), by process group.
pub fn kill_processes_under(root: &Path) {
    let Ok(root) = root.canonicalize() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
            continue;
        };
        if cwd.starts_with(&root) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Whether any process of group `pgid` is alive.
pub fn group_alive(pgid: i32) -> bool {
    galilean_actors::spawner::procfs::live_member_of(pgid)
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_processes_under(self.dir.path());
    }
}

/// A browser-like client: a cookie jar, no automatic redirects.
pub struct Browser {
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("galilean-tests")
            .build()
            .expect("client");
        Browser {
            jar,
            client,
            base: base.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// The cookies the jar would send to `path`, as `name -> value`.
    pub fn cookies(&self, path: &str) -> Vec<(String, String)> {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = self.url(path).parse().expect("url");
        let Some(h) = self.jar.cookies(&url) else {
            return vec![];
        };
        h.to_str()
            .unwrap_or("")
            .split("; ")
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    pub fn cookie(&self, path: &str, name: &str) -> Option<String> {
        self.cookies(path)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// Follows redirects by hand (at most 20), returning every hop's (status, url) and the
    /// last response.
    pub async fn follow(&self, path: &str) -> (Vec<(u16, String)>, reqwest::Response) {
        let mut url = self.url(path);
        let mut hops = Vec::new();
        for _ in 0..20 {
            let r = self.client.get(&url).send().await.expect("GET");
            let status = r.status().as_u16();
            hops.push((status, url.clone()));
            if !(300..400).contains(&status) {
                return (hops, r);
            }
            let loc = r.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
            url = reqwest::Url::parse(&url)
                .expect("url")
                .join(&loc)
                .expect("join")
                .to_string();
        }
        panic!("too many redirects: {hops:?}");
    }

    /// Logs in through the form; returns the status and Location of the POST.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        next: Option<&str>,
    ) -> (u16, Option<String>) {
        let path = match next {
            Some(n) => format!("/hub/login?next={}", urlencode(n)),
            None => "/hub/login".to_owned(),
        };
        let page = self.get(&path).await;
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.expect("login page");
        let xsrf = form_value(&html, "_xsrf").expect("_xsrf in the login form");
        let action = form_action(&html).expect("form action");
        let r = self
            .client
            .post(self.url(&action))
            .form(&[
                ("username", user),
                ("password", password),
                ("_xsrf", xsrf.as_str()),
            ])
            .send()
            .await
            .expect("POST login");
        let loc = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap_or("").to_owned());
        (r.status().as_u16(), loc)
    }
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The `value` of the input named `name` in `html`.
pub fn form_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(html_unescape(v))
}

/// The `action` of the first form in `html`.
pub fn form_action(html: &str) -> Option<String> {
    let at = html.find("<form")?;
    let tag = &html[at..at + html[at..].find('>')?];
    let v = tag.split("action=\"").nth(1)?.split('"').next()?;
    Some(html_unescape(v))
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
}

/// A node started in this process on the memory store, so a test can plant records
/// through the store itself; `change` adjusts the test config first.
pub struct InProcess {
    pub node: galilean_node::start::Node,
    pub store: std::sync::Arc<dyn galilean_storage::Store>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start(change: impl FnOnce(&mut galilean_node::config::Config)) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = galilean_node::config::Config::default_for_tests(dir.path());
        change(&mut config);
        let store: std::sync::Arc<dyn galilean_storage::Store> =
            std::sync::Arc::new(galilean_storage::MemoryStore::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let node = galilean_node::start::start_with_store(config, listener, store.clone())
            .await
            .expect("start the node");
        let url = format!("http://{}", node.addr);
        InProcess {
            node,
            store,
            url,
            _dir: dir,
        }
    }
}
