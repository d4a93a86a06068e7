//! Server CPU per received payload packet (receive, decrypt, replay check,
//! dispatch to the application) with 256 connected clients: tinyrtc's
//! `NetcodeServerN<256, ..>` next to `netcode-official`'s `Server`, in the
//! same run, over loopback UDP.
//!
//! netcode-official only exposes a socket-owning server, so both sides are
//! measured the same way: a batch of datagrams (8 per client, 100-byte
//! payloads) is queued in the server's socket, then the timer runs while the
//! server drains and processes them (official: `update` + `receive_packet`
//! for every slot; tinyrtc: `recv_from` + `handle_receive` per datagram, then
//! `handle_timeout` + `poll_transmit`). Batches alternate between the two so
//! machine noise hits both. tinyrtc is also timed without sockets
//! (`handle_receive` on datagrams already in memory).
//!
//! Prints ns/packet for each and the ratio tinyrtc / official (lower is
//! better). Runs in a few seconds.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use tinyrtc::netcode::wire::{ConnectTokenParams, CONNECT_TOKEN_BYTES, MAX_PACKET_BYTES};
use tinyrtc::netcode::{generate_connect_token, ClientState, NetcodeClient, NetcodeServerN, ServerConfig};
use tinyrtc::Instant;

const PID: u64 = 0xbe4c_0000_0000_0001;
const CLIENTS: usize = 256;
const PER_CLIENT: usize = 8;
const BATCH: usize = CLIENTS * PER_CLIENT;
const ROUNDS: usize = 60;
const PAYLOAD: [u8; 100] = [0xab; 100];

type Server = NetcodeServerN<CLIENTS, CLIENTS, 1024>;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn big_socket() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).unwrap();
    s.set_recv_buffer_size(4 << 20).unwrap();
    s.set_send_buffer_size(4 << 20).unwrap();
    s.set_nonblocking(true).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    s.into()
}

fn token(server: SocketAddr, id: u64, key: &[u8; 32]) -> [u8; CONNECT_TOKEN_BYTES] {
    let ud = [0u8; 256];
    let p = ConnectTokenParams {
        protocol_id: PID,
        client_id: id,
        create_timestamp: unix_now(),
        expire_seconds: 120,
        timeout_seconds: 60,
        public_addresses: &[server],
        internal_addresses: &[server],
        user_data: &ud,
    };
    let mut out = [0u8; CONNECT_TOKEN_BYTES];
    generate_connect_token(&p, key, &mut rand::rngs::OsRng, &mut out).unwrap();
    out
}

struct Peer {
    sock: UdpSocket,
    to_official: NetcodeClient,
    to_ours: NetcodeClient,
}

fn main() {
    let start = StdInstant::now();
    let clock = |t: StdInstant| Instant::from_micros(t.duration_since(start).as_micros() as u64);
    let key = netcode::generate_key();

    let mut official = netcode::Server::new("127.0.0.1:0".parse().unwrap(), PID, &key, 0.0).unwrap();
    official.start(CLIENTS).unwrap();
    let official_addr = official.address();

    let our_sock = big_socket();
    let our_addr = our_sock.local_addr().unwrap();
    let cfg = ServerConfig { protocol_id: PID, private_key: key, public_address: our_addr };
    let mut ours = Box::new(Server::new(cfg, &mut rand::rngs::OsRng));

    let mut peers: Vec<Peer> = (0..CLIENTS)
        .map(|i| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_nonblocking(true).unwrap();
            let now = clock(StdInstant::now());
            let mut a = NetcodeClient::new();
            a.connect(now, &token(official_addr, 1 + i as u64, &key)).unwrap();
            let mut b = NetcodeClient::new();
            b.connect(now, &token(our_addr, 1 + i as u64, &key)).unwrap();
            Peer { sock, to_official: a, to_ours: b }
        })
        .collect();

    // Connect everyone to both servers.
    let mut buf = [0u8; 2 * MAX_PACKET_BYTES];
    let deadline = StdInstant::now() + StdDuration::from_secs(10);
    loop {
        let t = StdInstant::now();
        let now = clock(t);
        official.update(t.duration_since(start).as_secs_f64());
        while official.next_event().is_some() {}
        while let Ok((n, from)) = our_sock.recv_from(&mut buf) {
            let _ = ours.handle_receive(now, unix_now(), from, &mut buf[..n]);
        }
        ours.handle_timeout(now);
        while let Some(tx) = ours.poll_transmit(now, &mut buf) {
            our_sock.send_to(&buf[..tx.len], tx.destination).unwrap();
        }
        while ours.poll_event().is_some() {}
        let mut all = true;
        for p in &mut peers {
            while let Ok((n, from)) = p.sock.recv_from(&mut buf) {
                let c = if from == official_addr { &mut p.to_official } else { &mut p.to_ours };
                let _ = c.handle_receive(now, from, &mut buf[..n]);
            }
            for c in [&mut p.to_official, &mut p.to_ours] {
                c.handle_timeout(now);
                while let Some(tx) = c.poll_transmit(now, &mut buf) {
                    p.sock.send_to(&buf[..tx.len], tx.destination).unwrap();
                }
                all &= c.state() == ClientState::Connected;
            }
        }
        if all && official.num_connected_clients() == CLIENTS && ours.num_connected() == CLIENTS {
            break;
        }
        assert!(StdInstant::now() < deadline, "handshakes did not finish");
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let frozen = StdInstant::now();
    let official_time = frozen.duration_since(start).as_secs_f64();
    let now = clock(frozen);

    let drain_clients = |peers: &mut Vec<Peer>, buf: &mut [u8]| {
        for p in peers.iter_mut() {
            while p.sock.recv_from(buf).is_ok() {}
        }
    };

    let (mut t_official, mut t_ours, mut t_mem) = (StdDuration::ZERO, StdDuration::ZERO, StdDuration::ZERO);
    let mut sink = 0u64;
    let mut batch_mem: Vec<(SocketAddr, Vec<u8>)> = Vec::with_capacity(BATCH);
    for _round in 0..ROUNDS {
        drain_clients(&mut peers, &mut buf);
        // official
        for p in &mut peers {
            for _ in 0..PER_CLIENT {
                let tx = p.to_official.send_payload(now, &PAYLOAD, &mut buf).unwrap();
                p.sock.send_to(&buf[..tx.len], tx.destination).unwrap();
            }
        }
        let t0 = StdInstant::now();
        official.update(official_time);
        let mut got = 0;
        for slot in 0..CLIENTS {
            while let Some((p, _)) = official.receive_packet(slot) {
                sink += u64::from(p[0]);
                got += 1;
            }
        }
        t_official += t0.elapsed();
        assert_eq!(got, BATCH, "official server delivered {got} of {BATCH}");

        // tinyrtc over its socket
        batch_mem.clear();
        for p in &mut peers {
            let from = p.sock.local_addr().unwrap();
            for _ in 0..PER_CLIENT {
                let tx = p.to_ours.send_payload(now, &PAYLOAD, &mut buf).unwrap();
                p.sock.send_to(&buf[..tx.len], tx.destination).unwrap();
                batch_mem.push((from, buf[..tx.len].to_vec()));
            }
        }
        let t0 = StdInstant::now();
        let mut got = 0;
        while let Ok((n, from)) = our_sock.recv_from(&mut buf) {
            if let Ok(Some(p)) = ours.handle_receive(now, unix_now(), from, &mut buf[..n]) {
                sink += u64::from(p.data[0]) + p.slot as u64;
                got += 1;
            }
        }
        ours.handle_timeout(now);
        while let Some(tx) = ours.poll_transmit(now, &mut buf) {
            sink += tx.len as u64;
        }
        t_ours += t0.elapsed();
        assert_eq!(got, BATCH, "tinyrtc server delivered {got} of {BATCH}");

        // tinyrtc without sockets: the same kind of datagrams, fresh sequences.
        for (i, p) in peers.iter_mut().enumerate() {
            for k in 0..PER_CLIENT {
                let tx = p.to_ours.send_payload(now, &PAYLOAD, &mut buf).unwrap();
                batch_mem[i * PER_CLIENT + k].1 = buf[..tx.len].to_vec();
            }
        }
        let t0 = StdInstant::now();
        for (from, d) in &mut batch_mem {
            if let Ok(Some(p)) = ours.handle_receive(now, 0, *from, d) {
                sink += u64::from(p.data[0]);
            }
        }
        t_mem += t0.elapsed();
    }
    assert_eq!(ours.num_connected(), CLIENTS);
    assert_eq!(official.num_connected_clients(), CLIENTS);
    let n = (ROUNDS * BATCH) as f64;
    let ns = |d: StdDuration| d.as_nanos() as f64 / n;
    println!(
        "netcode server, {CLIENTS} connected clients, {} payload packets of {} bytes each side",
        ROUNDS * BATCH,
        PAYLOAD.len()
    );
    println!("  netcode-official  update + receive_packet      {:8.0} ns/packet", ns(t_official));
    println!("  tinyrtc           recv_from + handle_receive   {:8.0} ns/packet", ns(t_ours));
    println!("  ratio tinyrtc / netcode-official = {:.2} (target <= 1.0)", ns(t_ours) / ns(t_official));
    println!("  tinyrtc           handle_receive only (memory) {:8.0} ns/packet", ns(t_mem));
    println!("  (checksum {sink}, total {:.1} s)", start.elapsed().as_secs_f64());
}
