//! A TCP proxy in front of the test cluster that can turn into a **black hole**: it stops
//! forwarding in both directions without closing or resetting anything, which is what a
//! PostgreSQL server sees when the client's node dies or its network is cut (and what the
//! client sees of a hung server). Nothing is ever answered again on a black-holed connection;
//! its sockets stay open until the proxy is dropped. Connections made while the proxy is a
//! black hole are accepted and never forwarded.
//!
//! [`BlackHoleProxy::black_hole_on`] arms it: the first chunk from a client that contains the
//! marker bytes is forwarded (so the server executes it) and then the hole opens — with a
//! marker that only a flush sends (a key id), the server is left holding that flush's
//! transaction open. [`BlackHoleProxy::heal`] forwards new connections again; black-holed ones
//! stay dead.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether the proxy forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    BlackHole,
}

/// What every connection task shares.
struct State {
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bytes whose sight opens the black hole.
    marker: Mutex<Option<Vec<u8>>>,
    /// Sockets of black-holed connections: kept open, never read, never written.
    held: Mutex<Vec<Held>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A socket (or half of one) kept open by the black hole.
enum Held {
    Stream(TcpStream),
    Halves(OwnedReadHalf, OwnedWriteHalf),
}

/// A proxy to `127.0.0.1:<upstream port>`; see the module docs.
pub struct BlackHoleProxy {
    port: u16,
    state: Arc<State>,
}

impl BlackHoleProxy {
    /// Starts a proxy to the PostgreSQL server listening on 127.0.0.1:`upstream_port`.
    pub async fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (mode, _) = watch::channel(Mode::Forward);
        let state = Arc::new(State {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port)),
            mode,
            marker: Mutex::new(None),
            held: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let accepting = tokio::spawn(accept(listener, state.clone()));
        state.tasks.lock().unwrap().push(accepting);
        Self { port, state }
    }

    /// A connection string to the cluster's `postgres` database through the proxy.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=2",
            self.port
        )
    }

    /// Opens the black hole right after forwarding the first client chunk containing `marker`.
    pub fn black_hole_on(&self, marker: &[u8]) {
        *self.state.marker.lock().unwrap() = Some(marker.to_vec());
    }

    /// Waits until the black hole is open; panics after `within`.
    pub async fn wait_for_black_hole(&self, within: Duration) {
        let mut mode = self.state.mode.subscribe();
        tokio::time::timeout(within, mode.wait_for(|m| *m == Mode::BlackHole))
            .await
            .expect("the marked flush reached the proxy")
            .expect("proxy state");
    }

    /// Opens the black hole now: nothing more is forwarded on any connection, new ones
    /// included (a replica whose network was cut).
    pub fn black_hole_now(&self) {
        self.state.mode.send_replace(Mode::BlackHole);
    }

    /// New connections are forwarded again; black-holed ones stay dead.
    pub fn heal(&self) {
        *self.state.marker.lock().unwrap() = None;
        self.state.mode.send_replace(Mode::Forward);
    }
}

impl Drop for BlackHoleProxy {
    fn drop(&mut self) {
        for task in self.state.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        self.state.held.lock().unwrap().clear();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
        if *state.mode.borrow() == Mode::BlackHole {
            state.held.lock().unwrap().push(Held::Stream(client));
            continue;
        }
        let Ok(server) = TcpStream::connect(state.upstream).await else {
            continue;
        };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = tokio::spawn(pump(state.clone(), client_read, server_write, true));
        let down = tokio::spawn(pump(state.clone(), server_read, client_write, false));
        state.tasks.lock().unwrap().extend([up, down]);
    }
}

/// Copies `from` to `to` until the black hole opens (then keeps both open) or a side closes.
async fn pump(state: Arc<State>, mut from: OwnedReadHalf, mut to: OwnedWriteHalf, upstream: bool) {
    let mut mode = state.mode.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    // The end of the previous chunk, so that a marker split across two reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        if *mode.borrow_and_update() == Mode::BlackHole {
            break;
        }
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = mode.changed() => continue,
        };
        let chunk = &buf[..n];
        let hit = upstream && state.marker_in(&mut tail, chunk);
        if hit {
            // Later chunks (and every answer) are swallowed from now on.
            state.mode.send_replace(Mode::BlackHole);
        } else if *mode.borrow() == Mode::BlackHole {
            break;
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
    state.held.lock().unwrap().push(Held::Halves(from, to));
}

impl State {
    /// Whether the armed marker occurs in `tail` + `chunk`; updates `tail`.
    fn marker_in(&self, tail: &mut Vec<u8>, chunk: &[u8]) -> bool {
        let marker = self.marker.lock().unwrap();
        let Some(marker) = marker.as_deref() else {
            return false;
        };
        tail.extend_from_slice(chunk);
        let found = tail.windows(marker.len()).any(|w| w == marker);
        let keep = marker.len().saturating_sub(1).min(tail.len());
        tail.drain(..tail.len() - keep);
        found
    }
}
