//! End-to-end tests: real sockets, a proxy front, real backends (hyper, and
//! tokio-tungstenite for WebSockets).

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use super::super::activity::now_micros;
use super::super::*;
use super::harness::*;
use super::route;

#[tokio::test]
async fn forwards_path_query_and_host_with_forwarded_headers() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(Uri, HeaderMap, Bytes)>();
    let backend = start_backend(move |req: Request<Incoming>| {
        let seen_tx = seen_tx.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let _ = seen_tx.send((parts.uri, parts.headers, body));
            let mut response = Response::new(full("hello"));
            let h = response.headers_mut();
            h.insert("x-backend", HeaderValue::from_static("1"));
            h.insert("connection", HeaderValue::from_static("x-resp-hop"));
            h.insert("x-resp-hop", HeaderValue::from_static("secret"));
            h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
            response
        }
    })
    .await;
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        backend,
        "alice",
        "",
    )]))
    .await;
    let client = client();

    let request = Request::post(front.url("/user/alice/api/contents/a%20b?x=1&y=%2F&z"))
        .header("host", "hub.example.org:8443")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "keep-alive, x-req-hop")
        .header("x-req-hop", "secret")
        .header("te", "trailers")
        .header("proxy-authorization", "basic eDp5")
        .header("x-custom", "kept")
        .body(full("payload"))
        .expect("request");
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-backend"], "1");
    assert!(!response.headers().contains_key("x-resp-hop"));
    assert!(!response.headers().contains_key("keep-alive"));
    assert_eq!(
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes(),
        "hello"
    );

    let (uri, headers, body) = seen_rx.recv().await.expect("backend saw the request");
    assert_eq!(
        uri.to_string(),
        "/user/alice/api/contents/a%20b?x=1&y=%2F&z"
    );
    assert_eq!(body, "payload");
    assert_eq!(headers["host"], "hub.example.org:8443");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "hub.example.org:8443");
    assert_eq!(headers["x-forwarded-port"], "8443");
    assert_eq!(headers["x-custom"], "kept");
    for hop in [
        "x-req-hop",
        "te",
        "proxy-authorization",
        "keep-alive",
        "upgrade",
    ] {
        assert!(!headers.contains_key(hop), "{hop} was forwarded");
    }

    let (status, _) = get_text(&client, &front.url("/user/alice/")).await;
    assert_eq!(status, StatusCode::OK);
    let (uri, headers, _) = seen_rx.recv().await.expect("backend saw the request");
    assert_eq!(uri.to_string(), "/user/alice/");
    let front_host = front.addr.to_string();
    assert_eq!(headers["host"], front_host.as_str());
    assert_eq!(headers["x-forwarded-host"], front_host.as_str());
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(
        headers["x-forwarded-port"],
        front.addr.port().to_string().as_str()
    );
}

#[tokio::test]
async fn routes_to_the_longest_prefix_and_records_activity() {
    let default = text_backend("default").await;
    let named = text_backend("nb1").await;
    let missing = start_backend(|_req| async {
        let mut response = Response::new(full("missing"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    })
    .await;
    let front = Front::start(RouteTable::from_routes([
        user_route("/user/alice/", default, "alice", ""),
        user_route("/user/alice/nb1/", named, "alice", "nb1"),
        user_route("/user/bob/", missing, "bob", ""),
    ]))
    .await;
    let client = client();
    let started = now_micros();
    for (path, status, body) in [
        ("/user/alice/lab", StatusCode::OK, "default"),
        ("/user/alice/nb1/lab?x=1", StatusCode::OK, "nb1"),
        ("/user/alice/nb1", StatusCode::OK, "default"),
        ("/user/alice", StatusCode::NOT_FOUND, "no route"),
        ("/user/bob/lab", StatusCode::NOT_FOUND, "missing"),
        ("/user/alicex/", StatusCode::NOT_FOUND, "no route"),
    ] {
        assert_eq!(
            get_text(&client, &front.url(path)).await,
            (status, body.to_owned()),
            "{path}"
        );
    }
    // Bob's server answered 404: not activity.
    let activity = front.activity.take();
    assert_eq!(activity.len(), 2);
    assert!(activity[&RouteKey::new("alice", "")] >= started);
    assert!(activity[&RouteKey::new("alice", "nb1")] >= started);
    assert!(front.activity.take().is_empty());
}

#[tokio::test]
async fn streams_five_mib_each_way() {
    let backend = start_backend(|req: Request<Incoming>| async move {
        let (len, sum) = measure(req.into_body()).await;
        let mut response = Response::new(five_mib_body(0x5a));
        response
            .headers_mut()
            .insert("x-len", HeaderValue::from(len));
        response
            .headers_mut()
            .insert("x-sum", HeaderValue::from(sum));
        response
    })
    .await;
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        backend,
        "alice",
        "",
    )]))
    .await;
    let request = Request::put(front.url("/user/alice/api/contents/big.bin"))
        .body(five_mib_body(0x11))
        .expect("request");
    let response = client().request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-len"], FIVE_MIB.to_string().as_str());
    assert_eq!(
        response.headers()["x-sum"],
        expected_sum(0x11).to_string().as_str()
    );
    assert_eq!(
        measure(response.into_body()).await,
        (FIVE_MIB, expected_sum(0x5a))
    );
}

#[tokio::test]
async fn response_chunks_pass_through_before_the_body_ends() {
    let (senders_tx, mut senders_rx) = mpsc::unbounded_channel::<mpsc::Sender<Bytes>>();
    let backend = start_backend(move |_req| {
        let (tx, rx) = mpsc::channel(4);
        let first_sent = tx.try_send(Bytes::from_static(b"first"));
        let _ = senders_tx.send(tx);
        async move {
            assert!(first_sent.is_ok());
            Response::new(channel_body(rx))
        }
    })
    .await;
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        backend,
        "alice",
        "",
    )]))
    .await;
    // A buffering proxy would hold the response head until the body ends.
    let response = timeout(
        WAIT,
        client().get(front.url("/user/alice/events").parse::<Uri>().expect("url")),
    )
    .await
    .expect("response head before the rest is released")
    .expect("response");
    let mut body = response.into_body();
    let first = timeout(WAIT, body.frame())
        .await
        .expect("first chunk before the rest is released");
    assert_eq!(
        first
            .expect("frame")
            .expect("frame")
            .into_data()
            .expect("data"),
        "first"
    );
    let rest = senders_rx.recv().await.expect("backend sender");
    rest.send(Bytes::from_static(b"second"))
        .await
        .expect("send");
    drop(rest);
    assert_eq!(body.collect().await.expect("body").to_bytes(), "second");
}

#[tokio::test]
async fn request_chunks_pass_through_before_the_body_ends() {
    let (got_tx, mut got_rx) = mpsc::unbounded_channel::<Bytes>();
    let backend = start_backend(move |req: Request<Incoming>| {
        let got_tx = got_tx.clone();
        async move {
            let mut body = req.into_body();
            let mut total = 0;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                    let _ = got_tx.send(data);
                }
            }
            Response::new(full(total.to_string()))
        }
    })
    .await;
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        backend,
        "alice",
        "",
    )]))
    .await;
    let (tx, rx) = mpsc::channel(4);
    tx.send(Bytes::from_static(b"first")).await.expect("send");
    let request = Request::post(front.url("/user/alice/upload"))
        .body(channel_body(rx))
        .expect("request");
    let pending = tokio::spawn(client().request(request));
    let first = timeout(WAIT, got_rx.recv())
        .await
        .expect("backend got the first chunk before the rest was sent");
    assert_eq!(first.expect("chunk"), "first");
    tx.send(Bytes::from_static(b"second")).await.expect("send");
    drop(tx);
    let response = pending.await.expect("task").expect("response");
    assert_eq!(
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes(),
        "11"
    );
}

#[tokio::test]
async fn websocket_echo_through_the_proxy() {
    let (path_tx, mut path_rx) = mpsc::unbounded_channel::<String>();
    let (listener, backend) = bind().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let path_tx = path_tx.clone();
            tokio::spawn(async move {
                // The callback's signature is tungstenite's.
                #[allow(clippy::result_large_err)]
                let callback =
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                        let _ = path_tx.send(req.uri().to_string());
                        Ok(response)
                    };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let (mut sink, mut source) = ws.split();
                while let Some(Ok(message)) = source.next().await {
                    if message.is_text() || message.is_binary() {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    } else if message.is_close() {
                        break;
                    }
                }
            });
        }
    });
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        backend,
        "alice",
        "",
    )]))
    .await;
    let url = format!(
        "ws://{}/user/alice/api/kernels/k1/channels?session_id=s1",
        front.addr
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        path_rx.recv().await.expect("path").as_str(),
        "/user/alice/api/kernels/k1/channels?session_id=s1"
    );
    front.activity.take();

    let big: Vec<u8> = (0..200_000).map(|i| (i % 256) as u8).collect();
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(Message::Text(format!("message {i}")));
    }
    sent.push(Message::Binary(big));
    for message in &sent {
        ws.send(message.clone()).await.expect("send");
        let echo = timeout(WAIT, ws.next())
            .await
            .expect("echo in time")
            .expect("echo")
            .expect("echo");
        assert_eq!(&echo, message);
    }
    assert!(front
        .activity
        .take()
        .contains_key(&RouteKey::new("alice", "")));
    ws.close(None).await.expect("close");
}

#[tokio::test]
async fn unreachable_backend_is_503() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr")
    };
    let front = Front::start(RouteTable::from_routes([
        user_route("/user/alice/", dead, "alice", ""),
        route("/user/bob/", "ftp://127.0.0.1:1", "bob", ""),
    ]))
    .await;
    let client = client();
    for (path, kind) in [
        ("/user/alice/lab", "unreachable"),
        ("/user/bob/lab", "invalid-target"),
    ] {
        let response = client
            .get(front.url(path).parse::<Uri>().expect("url"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-test-error"], kind);
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("Service Unavailable"));
    }
    assert!(
        front.activity.is_empty(),
        "a failed request is not activity"
    );
}

#[tokio::test]
async fn a_published_table_applies_to_the_next_request() {
    let one = text_backend("one").await;
    let two = text_backend("two").await;
    let front = Front::start(RouteTable::from_routes([user_route(
        "/user/alice/",
        one,
        "alice",
        "",
    )]))
    .await;
    let client = client();
    let url = front.url("/user/alice/lab");
    assert_eq!(get_text(&client, &url).await.1, "one");
    // The pooled client reuses its connection, so the same front connection sees the swap.
    front
        .routes
        .send_replace(Arc::new(RouteTable::from_routes([user_route(
            "/user/alice/",
            two,
            "alice",
            "",
        )])));
    assert_eq!(get_text(&client, &url).await.1, "two");
    front.routes.send_replace(Arc::new(RouteTable::empty()));
    assert_eq!(get_text(&client, &url).await.0, StatusCode::NOT_FOUND);
}
