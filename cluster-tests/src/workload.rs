//! The clients: each draws its operations (kind, user, node) from its own generator
//! seeded by the run's seed and its number, so a seed gives the same sequence of
//! operations; only arguments that depend on earlier answers (which of the client's
//! tokens to revoke or check) are resolved as the run goes.
//!
//! Besides users, tokens and servers, the clients change the members of the group
//! [`GRANT_GROUP`] and check the grant it carries: the reader's token asks for a user's
//! model, which the reader may see while the user is a member. A change of membership
//! is followed at once by such a check through another node, where a view older than
//! the acknowledged change would show.
//!
//! Every operation is recorded with its invocation and completion times and outcome:
//! a 2xx answer is `ok`; an error answer or a refused connection `failed`; no answer in
//! time `unknown`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::history::{Op, OpKind, Outcome};
use crate::nodes::{ADMIN_TOKEN, GRANT_GROUP};

/// Users that exist for the whole run (servers and tokens are theirs).
pub fn stable_users() -> Vec<String> {
    (0..6).map(|i| format!("s{i}")).collect()
}

/// Users that clients create and delete.
pub fn churn_users() -> Vec<String> {
    (0..6).map(|i| format!("c{i}")).collect()
}

/// What the clients share.
pub struct Ctx {
    pub urls: Vec<String>,
    pub started: Instant,
    pub http: reqwest::Client,
    pub next_id: AtomicU64,
    pub ops: Mutex<Vec<Op>>,
    /// The secret of the reader's token, made in the run's set-up: grant checks present
    /// it.
    pub reader: OnceLock<String>,
}

impl Ctx {
    pub fn new(urls: Vec<String>, started: Instant) -> anyhow::Result<Ctx> {
        Ok(Ctx {
            urls,
            started,
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(3))
                .build()?,
            next_id: AtomicU64::new(1),
            ops: Mutex::new(Vec::new()),
            reader: OnceLock::new(),
        })
    }

    pub fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn record(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    pub fn take_ops(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What one HTTP exchange gave.
struct Answer {
    outcome: Outcome,
    status: Option<u16>,
    body: serde_json::Value,
    detail: Option<String>,
}

impl Ctx {
    async fn request(
        &self,
        node: u32,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Answer {
        let url = format!("{}{path}", self.urls[node as usize - 1]);
        let mut request = self
            .http
            .request(method, url)
            .header("Authorization", format!("token {token}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let sent = request.send().await;
        match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                Answer {
                    outcome: if (200..300).contains(&status) {
                        Outcome::Ok
                    } else {
                        Outcome::Failed
                    },
                    status: Some(status),
                    body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
                    detail: (!(200..300).contains(&status))
                        .then(|| text.chars().take(200).collect()),
                }
            }
            Err(e) => Answer {
                // a refused or timed-out connection sent nothing
                outcome: if e.is_connect() {
                    Outcome::Failed
                } else {
                    Outcome::Unknown
                },
                status: None,
                body: serde_json::Value::Null,
                detail: Some(e.to_string()),
            },
        }
    }

    /// Runs `kind` against `node` and records it.
    pub async fn perform(&self, client: u32, node: u32, kind: OpKind, secret: Option<&str>) -> Op {
        self.perform_within(client, node, kind, secret, None).await
    }

    /// [`Ctx::perform`], waiting up to `timeout` for the answer instead of the clients'
    /// 3 s (an HTTP operation; a WebSocket echo keeps its own limit).
    pub async fn perform_within(
        &self,
        client: u32,
        node: u32,
        mut kind: OpKind,
        secret: Option<&str>,
        timeout: Option<Duration>,
    ) -> Op {
        let invoke_ms = self.ms();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut answer = match request_of(&kind, secret) {
            Some((method, path, token, body)) => {
                self.request(node, method, &path, token, body.as_ref(), timeout)
                    .await
            }
            None => self.websocket(node, kind.user()).await,
        };
        // what the answer says, into the operation
        match &mut kind {
            OpKind::ReadUser { found, .. } => {
                *found = match answer.status {
                    Some(200) => Some(true),
                    Some(404) => Some(false),
                    _ => None,
                };
            }
            OpKind::CreateToken {
                token_id, secret, ..
            } => {
                *token_id = answer.body["id"].as_str().map(str::to_owned);
                *secret = answer.body["token"].as_str().map(str::to_owned);
            }
            OpKind::CheckToken { user, accepted, .. } => {
                *accepted = match answer.status {
                    Some(200) => Some(answer.body["name"] == user.as_str()),
                    Some(401 | 403) => Some(false),
                    _ => None,
                };
                // a rejection is a correct answer, not an unavailable hub
                if *accepted == Some(false) {
                    answer.outcome = Outcome::Ok;
                    answer.detail = None;
                }
            }
            OpKind::CheckGrant { honoured, .. } => {
                *honoured = match answer.status {
                    Some(200) => Some(true),
                    Some(404) => Some(false),
                    _ => None,
                };
                // a refusal is a correct answer, not an unavailable hub
                if *honoured == Some(false) {
                    answer.outcome = Outcome::Ok;
                    answer.detail = None;
                }
            }
            OpKind::ProxyHttp { pid, .. } => {
                *pid = answer.body["pid"].as_u64().map(|p| p as u32);
            }
            _ => {}
        }
        let op = Op {
            id,
            client,
            node,
            invoke_ms,
            complete_ms: self.ms(),
            outcome: answer.outcome,
            status: answer.status,
            kind,
            detail: answer.detail,
        };
        self.record(op.clone());
        op
    }

    /// One message echoed through a WebSocket to the user's server, via `node`'s proxy.
    async fn websocket(&self, node: u32, user: &str) -> Answer {
        let url = format!(
            "{}/user/{user}/echo",
            self.urls[node as usize - 1].replacen("http://", "ws://", 1)
        );
        let exchange = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(|e| (Outcome::Failed, e.to_string()))?;
            let text = format!("ping {user}");
            ws.send(tokio_tungstenite::tungstenite::Message::Text(text.clone()))
                .await
                .map_err(|e| (Outcome::Unknown, e.to_string()))?;
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) if t == text => Ok(()),
                other => Err((Outcome::Failed, format!("no echo: {other:?}"))),
            }
        };
        match tokio::time::timeout(Duration::from_secs(3), exchange).await {
            Ok(Ok(())) => Answer {
                outcome: Outcome::Ok,
                status: Some(101),
                body: serde_json::Value::Null,
                detail: None,
            },
            Ok(Err((outcome, detail))) => Answer {
                outcome,
                status: None,
                body: serde_json::Value::Null,
                detail: Some(detail.chars().take(200).collect()),
            },
            Err(_) => Answer {
                outcome: Outcome::Unknown,
                status: None,
                body: serde_json::Value::Null,
                detail: Some("no echo within 3 s".into()),
            },
        }
    }
}

/// An HTTP request: method, path, token and JSON body.
type Request<'a> = (reqwest::Method, String, &'a str, Option<serde_json::Value>);

/// The HTTP request of an operation (`None` for the WebSocket echo). `secret` is the
/// token a token or grant check presents.
fn request_of<'a>(kind: &OpKind, secret: Option<&'a str>) -> Option<Request<'a>> {
    use reqwest::Method;
    let members = |user: &str| Some(serde_json::json!({ "users": [user] }));
    let (method, path, token) = match kind {
        OpKind::CreateUser { user } => {
            (Method::POST, format!("/hub/api/users/{user}"), ADMIN_TOKEN)
        }
        OpKind::DeleteUser { user } => (
            Method::DELETE,
            format!("/hub/api/users/{user}"),
            ADMIN_TOKEN,
        ),
        OpKind::ReadUser { user, .. } => {
            (Method::GET, format!("/hub/api/users/{user}"), ADMIN_TOKEN)
        }
        OpKind::CreateToken { user, .. } => (
            Method::POST,
            format!("/hub/api/users/{user}/tokens"),
            ADMIN_TOKEN,
        ),
        OpKind::RevokeToken { user, token_id } => (
            Method::DELETE,
            format!("/hub/api/users/{user}/tokens/{token_id}"),
            ADMIN_TOKEN,
        ),
        OpKind::CheckToken { .. } => (
            Method::GET,
            "/hub/api/user".to_owned(),
            secret.unwrap_or(""),
        ),
        OpKind::StartServer { user } => (
            Method::POST,
            format!("/hub/api/users/{user}/server"),
            ADMIN_TOKEN,
        ),
        OpKind::StopServer { user } => (
            Method::DELETE,
            format!("/hub/api/users/{user}/server"),
            ADMIN_TOKEN,
        ),
        OpKind::ProxyHttp { user, .. } => (Method::GET, format!("/user/{user}/whoami"), ""),
        OpKind::ProxyWs { .. } => return None,
        OpKind::AddToGroup { group, user } => {
            let path = format!("/hub/api/groups/{group}/users");
            return Some((Method::POST, path, ADMIN_TOKEN, members(user)));
        }
        OpKind::RemoveFromGroup { group, user } => {
            let path = format!("/hub/api/groups/{group}/users");
            return Some((Method::DELETE, path, ADMIN_TOKEN, members(user)));
        }
        OpKind::CheckGrant { user, .. } => (
            Method::GET,
            format!("/hub/api/users/{user}"),
            secret.unwrap_or(""),
        ),
    };
    Some((method, path, token, None))
}

/// A check of the reader's grant on `user`.
pub fn grant_check(user: String) -> OpKind {
    OpKind::CheckGrant {
        group: GRANT_GROUP.into(),
        user,
        honoured: None,
    }
}

/// A token a client made: (user, id, secret).
type Token = (String, String, String);

/// Runs client `client` until `until`: draws an operation, performs it, repeats.
pub async fn client(ctx: Arc<Ctx>, seed: u64, client: u32, until: Instant) {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (u64::from(client) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let stable = stable_users();
    let churn = churn_users();
    let nodes = ctx.urls.len() as u32;
    let mut live: Vec<Token> = Vec::new();
    let mut revoked: Vec<Token> = Vec::new();
    while Instant::now() < until {
        let node = rng.gen_range(1..=nodes);
        // where a membership change's check goes: another node, when there is one
        let other = (node + rng.gen_range(1..nodes.max(2)) - 1) % nodes + 1;
        let roll = rng.gen_range(0..120u32);
        let s = stable[rng.gen_range(0..stable.len())].clone();
        let c = churn[rng.gen_range(0..churn.len())].clone();
        let pick: usize = rng.gen();
        let check_revoked = rng.gen_ratio(1, 3);
        let (kind, secret) = match roll {
            0..=14 => (
                OpKind::ReadUser {
                    user: s,
                    found: None,
                },
                None,
            ),
            15..=34 => {
                // check a live token, or (a third of the time) a revoked one
                let from = if !revoked.is_empty() && (check_revoked || live.is_empty()) {
                    &revoked
                } else {
                    &live
                };
                match from.get(pick % from.len().max(1)) {
                    Some((user, id, secret)) => (
                        OpKind::CheckToken {
                            user: user.clone(),
                            token_id: id.clone(),
                            accepted: None,
                        },
                        Some(secret.clone()),
                    ),
                    None => (
                        OpKind::ReadUser {
                            user: s,
                            found: None,
                        },
                        None,
                    ),
                }
            }
            35..=46 => (
                OpKind::CreateToken {
                    user: s,
                    token_id: None,
                    secret: None,
                },
                None,
            ),
            47..=52 if !live.is_empty() => {
                let (user, id, _) = live[pick % live.len()].clone();
                (OpKind::RevokeToken { user, token_id: id }, None)
            }
            47..=52 => (
                OpKind::ReadUser {
                    user: s,
                    found: None,
                },
                None,
            ),
            53..=64 => (OpKind::ProxyHttp { user: s, pid: None }, None),
            65..=69 => (OpKind::ProxyWs { user: s }, None),
            70..=77 => (OpKind::StartServer { user: s }, None),
            78..=80 => (OpKind::StopServer { user: s }, None),
            81..=91 => (OpKind::CreateUser { user: c }, None),
            92..=99 => (OpKind::DeleteUser { user: c }, None),
            100..=109 => (grant_check(s), ctx.reader.get().cloned()),
            110..=114 => (
                OpKind::AddToGroup {
                    group: GRANT_GROUP.into(),
                    user: s,
                },
                None,
            ),
            _ => (
                OpKind::RemoveFromGroup {
                    group: GRANT_GROUP.into(),
                    user: s,
                },
                None,
            ),
        };
        let op = ctx.perform(client, node, kind, secret.as_deref()).await;
        if let OpKind::AddToGroup { user, .. } | OpKind::RemoveFromGroup { user, .. } = &op.kind {
            // whatever the answer: a check through another node at once
            let reader = ctx.reader.get().map(String::as_str);
            ctx.perform(client, other, grant_check(user.clone()), reader)
                .await;
        }
        match &op.kind {
            OpKind::CreateToken {
                user,
                token_id: Some(id),
                secret: Some(secret),
            } if op.outcome == Outcome::Ok => {
                live.push((user.clone(), id.clone(), secret.clone()));
            }
            OpKind::RevokeToken { token_id, .. } => {
                // whatever the outcome, it may have been revoked: check it as revoked
                if let Some(i) = live.iter().position(|t| &t.1 == token_id) {
                    revoked.push(live.remove(i));
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(2..15))).await;
    }
}
