//! What keeps the server responsive for others under a flood: the cap on open connections (for
//! the server and per source address), the timeout on a request's head (slowloris) and on the
//! whole request (408), the deadline on writing an answer nobody reads, the connections' maximum
//! age, the body's size limit, and the limit on failed proofs per source address. Each test shows the limit holding
//! and another client getting through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sleutel_protocol::api::{self, codes};
use sleutel_protocol::dpop::PROOF_HEADER;
use sleutel_protocol::limits::MAX_BODY_BYTES;
use sleutel_server::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Longer than any limit these tests set, shorter than the defaults: what passes in this time
/// passed because of the limit under test.
const WITHIN: Duration = Duration::from_secs(5);

fn addr(server: &sleutel_harness::server::InProcessServer) -> SocketAddr {
    server
        .url()
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .unwrap()
}

/// Reads what the server sends until it closes the connection (or resets it), at most
/// `WITHIN`; `None` if it neither answers nor closes in that time.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// A client from another loopback address than the tests' default 127.0.0.1.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .timeout(WITHIN)
        .build()
        .unwrap()
}

/// Opens `n` connections from 127.0.0.1 and keeps them, then checks that the next one is refused
/// at once: answered 503 `temporarily_unavailable` unread and closed (or reset, since the refusal
/// is written without reading and a reset may overtake it). Returns the connections held.
async fn hold_until_refused(
    server: &sleutel_harness::server::InProcessServer,
    n: usize,
) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(TcpStream::connect(addr(server)).await.unwrap());
    }
    let mut next = TcpStream::connect(addr(server)).await.unwrap();
    let answer = read_until_closed(&mut next)
        .await
        .expect("a connection beyond the cap is closed at once");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "{answer}"
    );
    if !answer.is_empty() {
        assert!(answer.contains(codes::TEMPORARILY_UNAVAILABLE), "{answer}");
    }
    held
}

/// Whether `client` gets `/healthz` answered 200 within `within`, asking again every 20 ms: a
/// place given back is seen by the server only on its next read of the closed connection.
async fn served_within(
    server: &sleutel_harness::server::InProcessServer,
    client: &reqwest::Client,
    within: Duration,
) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        let answer = client.get(format!("{}/healthz", server.url())).send().await;
        if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn healthy(server: &sleutel_harness::server::InProcessServer) -> StatusCode {
    client_from(9)
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_connection_beyond_the_cap_is_refused_at_once_and_a_freed_place_lets_the_next_in() {
    let server = server_with(Policy {
        max_connections: 3,
        ..Policy::default()
    })
    .await;
    let refused_in = Instant::now();
    let mut held = hold_until_refused(&server, 3).await;

    assert!(refused_in.elapsed() < Duration::from_secs(2));
    drop(held.pop());
    assert!(served_within(&server, &client_from(9), WITHIN).await);
}

#[tokio::test]
async fn an_address_beyond_its_connection_cap_is_refused_while_another_is_served() {
    let server = server_with(Policy {
        max_connections_per_address: 2,
        ..Policy::default()
    })
    .await;
    let held = hold_until_refused(&server, 2).await;

    assert_eq!(healthy(&server).await, StatusCode::OK, "another address");
    drop(held);
    assert!(
        served_within(&server, &client_from(1), WITHIN).await,
        "the address's places came back"
    );
}

#[tokio::test]
async fn a_connection_past_its_maximum_age_is_closed_after_its_answer() {
    let server = server_with(Policy {
        max_connection_age_secs: 1,
        ..Policy::default()
    })
    .await;
    let mut kept = TcpStream::connect(addr(&server)).await.unwrap();
    let opened = Instant::now();
    let mut answered = 0;

    // A client that keeps its connection busy with a cheap request every 100 ms.
    let closed = tokio::time::timeout(WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            let sent = kept
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: sleutel\r\n\r\n")
                .await;
            let read = match sent {
                Ok(()) => kept.read(&mut buf).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
                    answered += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;

    assert!(closed.is_ok(), "the connection outlived its maximum age");
    assert!(opened.elapsed() >= Duration::from_millis(900));
    assert!(answered >= 5, "it was served until then: {answered}");
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_loses_its_connection() {
    let server = server_with(Policy {
        max_connections: 1,
        response_write_timeout_millis: 1_000,
        ..Policy::default()
    })
    .await;
    // Asks for the discovery document (about 2 KB) over and over on one connection and never
    // reads: the socket's buffers fill, and the server's write waits.
    let stuck = TcpStream::connect(addr(&server)).await.unwrap();
    let (_reader, mut writer) = stuck.into_split();
    let flood = tokio::spawn(async move {
        let ask = b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: sleutel\r\n\r\n";
        while writer.write_all(ask).await.is_ok() {}
    });
    // The one place is taken (its answers still flow while the buffers fill, and then its
    // write waits a second): another client is refused until it is given back.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = !served_within(&server, &client_from(9), Duration::from_millis(100)).await;

    let freed = served_within(&server, &client_from(9), WITHIN).await;

    flood.abort();
    assert!(refused, "the stuck connection held the only place");
    assert!(
        freed,
        "the connection whose answers were not read kept its place"
    );
}

/// The server stops within bounds even with a connection that reads none of its answers and
/// one idle between requests: each is asked to close, and the stuck one ends at its write
/// deadline.
#[tokio::test]
async fn the_server_stops_with_a_connection_stuck_writing_and_one_idle() {
    let server = server_with(Policy {
        response_write_timeout_millis: 500,
        ..Policy::default()
    })
    .await;
    let stuck = TcpStream::connect(addr(&server)).await.unwrap();
    let (_reader, mut writer) = stuck.into_split();
    let flood = tokio::spawn(async move {
        let ask = b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: sleutel\r\n\r\n";
        while writer.write_all(ask).await.is_ok() {}
    });
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: sleutel\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    assert!(idle.read(&mut answer).await.unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(20), server.shutdown()).await;

    flood.abort();
    assert!(stopped.is_ok(), "the server did not stop");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        read_until_closed(&mut idle).await.is_some(),
        "the idle connection was closed"
    );
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_is_cut_off_while_others_are_served() {
    let server = server_with(Policy {
        request_head_timeout_millis: 300,
        ..Policy::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: sleutel\r\nX-Slow: a")
        .await
        .unwrap();
    let started = Instant::now();

    let other = healthy(&server).await;
    let cut_off = read_until_closed(&mut slow).await;

    assert_eq!(other, StatusCode::OK);
    assert!(cut_off.is_some(), "the unfinished head was not cut off");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_head_timeout() {
    let server = server_with(Policy {
        request_head_timeout_millis: 300,
        ..Policy::default()
    })
    .await;
    let mut idle = TcpStream::connect(addr(&server)).await.unwrap();

    let closed = read_until_closed(&mut idle).await;

    assert!(closed.is_some(), "an idle connection kept its place");
}

#[tokio::test]
async fn a_request_whose_body_trickles_past_the_timeout_is_answered_408() {
    let server = server_with(Policy {
        request_timeout_millis: 300,
        ..Policy::default()
    })
    .await;
    let mut slow = TcpStream::connect(addr(&server)).await.unwrap();
    slow.write_all(
        format!(
            "POST {} HTTP/1.1\r\nHost: sleutel\r\nContent-Type: \
             application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
            api::oidc::PATH_TOKEN
        )
        .as_bytes(),
    )
    .await
    .unwrap();

    let other = healthy(&server).await;
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WITHIN, slow.read(&mut answer))
        .await
        .expect("no answer to the trickled body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();

    assert_eq!(other, StatusCode::OK);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(codes::REQUEST_TIMEOUT), "{answer}");
}

#[tokio::test]
async fn an_oversize_body_is_refused_and_the_next_call_is_served() {
    let server = server().await;
    let phone = Phone::new(&server.url());

    let (status, _) = err(phone
        .send(
            reqwest::Method::POST,
            api::PATH_ENROLLMENTS,
            vec![b' '; MAX_BODY_BYTES + 1],
        )
        .await)
    .await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(healthy(&server).await, StatusCode::OK);
}

#[tokio::test]
async fn failed_proofs_from_one_address_beyond_the_limit_are_refused_and_counted_in_the_database() {
    let server = server_with(Policy {
        max_proof_failures_per_source_per_minute: 3,
        ..Policy::default()
    })
    .await;
    let bad = |http: reqwest::Client| {
        let url = format!("{}{}", server.url(), api::PATH_REQUESTS);
        async move {
            http.get(url)
                .header(PROOF_HEADER, "not.a.proof")
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..3 {
        let (status, error) = err(bad(client_from(1)).await).await;
        assert_eq!(
            (status, error.error.as_str()),
            (StatusCode::UNAUTHORIZED, codes::INVALID_PROOF)
        );
    }

    let refused = bad(client_from(1)).await;
    let retry_after = refused.headers().get("retry-after").cloned();
    let (status, error) = err(refused).await;
    // A valid proof from that address is refused too, before it is verified.
    let (valid_status, valid_error) = err(Phone::with_http(&server.url(), client_from(1))
        .get(api::PATH_REQUESTS)
        .await)
    .await;
    // Another address still gets its proof verified: an unknown key, but a valid proof.
    let (other_status, other_error) = err(Phone::with_http(&server.url(), client_from(2))
        .get(api::PATH_REQUESTS)
        .await)
    .await;
    let counted: i64 = server
        .sql_value(
            "SELECT CAST(sum(count) AS BIGINT) FROM rate_counts \
             WHERE bucket = 'proof-failure/source/127.0.0.1'",
            &[],
        )
        .unwrap()
        .unwrap();

    assert_eq!(
        (status, error.error.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED)
    );
    assert!(retry_after.is_some());
    assert_eq!(
        (valid_status, valid_error.error.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED)
    );
    assert_eq!(
        (other_status, other_error.error.as_str()),
        (StatusCode::UNAUTHORIZED, codes::UNKNOWN_DEVICE)
    );
    assert_eq!(counted, 3);
}

#[tokio::test]
async fn calls_without_a_proof_are_refused_without_being_counted() {
    let server = server_with(Policy {
        max_proof_failures_per_source_per_minute: 1,
        ..Policy::default()
    })
    .await;
    for _ in 0..3 {
        let (status, error) = err(client_from(1)
            .get(format!("{}{}", server.url(), api::PATH_REQUESTS))
            .send()
            .await
            .unwrap())
        .await;
        assert_eq!(
            (status, error.error.as_str()),
            (StatusCode::UNAUTHORIZED, codes::INVALID_PROOF)
        );
    }

    let counted: i64 = server
        .sql_value(
            "SELECT count(*) FROM rate_counts WHERE bucket LIKE 'proof-failure/%'",
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(counted, 0);
}
