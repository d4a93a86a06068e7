//! str0m 0.24 (an independent sans-IO WebRTC stack, crates.io) on the
//! network simulator's virtual clock: the input/output plumbing every str0m
//! host in the tests and benches shares. Each host keeps its own state and
//! handles the events [`Str0mIo::pump`] hands back.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};
use tinyrtc::{Instant, Transmit};

/// An `Rtc`, the datagrams it wants sent, and its next deadline in
/// simulator time.
pub struct Str0mIo {
    pub rtc: Rtc,
    /// The wall-clock instant simulator time zero stands for.
    base: StdInstant,
    timeout: Option<Instant>,
    out: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Str0mIo {
    /// `rtc` was built with `base` as its start; it is due at once.
    pub fn new(rtc: Rtc, base: StdInstant) -> Str0mIo {
        Str0mIo { rtc, base, timeout: Some(Instant::ZERO), out: VecDeque::new() }
    }

    /// Simulator time as str0m's clock.
    pub fn std(&self, t: Instant) -> StdInstant {
        self.base + StdDuration::from_micros(t.as_micros())
    }

    /// Run str0m until it waits: datagrams are queued for
    /// [`Str0mIo::poll_transmit`], its deadline kept, its events returned.
    pub fn pump(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            match self.rtc.poll_output().expect("str0m poll_output") {
                Output::Transmit(t) => self.out.push_back((t.source, t.destination, t.contents.to_vec())),
                Output::Event(e) => events.push(e),
                Output::Timeout(t) => {
                    // Round up: a deadline truncated to the microsecond
                    // before it would wake str0m too early, forever.
                    let d = t.saturating_duration_since(self.base);
                    let us = d.as_micros() as u64 + u64::from(!d.subsec_nanos().is_multiple_of(1000));
                    self.timeout = Some(Instant::from_micros(us));
                    return events;
                }
            }
        }
    }

    /// A datagram for str0m (one it cannot take, e.g. oversized, is
    /// dropped as the network would).
    pub fn receive(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else { return };
        let input =
            Input::Receive(self.std(now), Receive { proto: Protocol::Udp, source: from, destination: to, contents });
        self.rtc.handle_input(input).expect("str0m handle_input");
    }

    /// str0m's clock moved to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let t = self.std(now);
        self.rtc.handle_input(Input::Timeout(t)).expect("str0m timeout");
    }

    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (src, dst, data) = self.out.pop_front()?;
        buf[..data.len()].copy_from_slice(&data);
        Some(Transmit { source: Some(src), destination: dst, len: data.len() })
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timeout
    }
}
