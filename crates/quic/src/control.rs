//! What a client asks of a node outside Paxos, on the node's link: pings (a round trip and the
//! node's clock) and admin commands (stats, fault and disk settings), numbered so that each
//! reply is matched to its request, awaited with a timeout or left to arrive later.

use std::time::{Duration, Instant};

use crate::budget::Inbox;
use crate::error::Error;
use crate::link::{Inbound, Link};
use crate::wire::{AdminCommand, AdminReply, Envelope, NodeStats, unix_now_ns};

/// How often an unanswered ping is sent again: a node that is still starting drops early ones.
const PING_RESEND: Duration = Duration::from_millis(200);

/// A ping's answer.
#[derive(Clone, Copy, Debug)]
pub struct Pong {
    /// The round trip.
    pub rtt: Duration,
    /// The node's clock minus ours, had the node read it halfway through the round trip.
    pub offset_ns: i64,
}

/// Numbers a client's admin requests and pings, and matches their replies.
#[derive(Debug)]
pub struct Control {
    next: u64,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// Numbers from 1.
    pub fn new() -> Self {
        Self { next: 1 }
    }

    fn number(&mut self) -> u64 {
        let number = self.next;
        self.next += 1;
        number
    }

    /// Sends `command` to the node at the end of `link` without waiting; returns the number
    /// its reply will carry (see [`Control::reply_to`]).
    pub fn send(&mut self, link: &Link, command: AdminCommand) -> u64 {
        let request = self.number();
        link.send(Envelope::Admin { request, command });
        request
    }

    /// The reply in `envelope`, with its request's number, if it is an admin reply.
    pub fn reply_to(envelope: &Envelope) -> Option<(u64, &AdminReply)> {
        match envelope {
            Envelope::AdminReply { request, reply } => Some((*request, reply)),
            _ => None,
        }
    }

    /// Sends `command` and waits up to `timeout` for its reply. Whatever else arrives meanwhile
    /// is dropped: call it before or after a run, not while Paxos traffic flows.
    pub async fn call(
        &mut self,
        link: &Link,
        inbox: &mut Inbox,
        command: AdminCommand,
        timeout: Duration,
    ) -> Result<AdminReply, Error> {
        let what = command.name();
        let request = self.send(link, command);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, inbox.recv()).await {
                // Only the asked node's reply counts: another peer's number proves nothing.
                Ok(Some(Inbound {
                    envelope: Envelope::AdminReply { request: r, reply },
                    peer,
                    ..
                })) if r == request && peer == link.peer() => return Ok(reply),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    return Err(Error::NoReply {
                        peer: link.peer(),
                        what,
                        waited: timeout,
                    });
                }
            }
        }
    }

    /// The node's counters, within `timeout`.
    pub async fn stats(
        &mut self,
        link: &Link,
        inbox: &mut Inbox,
        timeout: Duration,
    ) -> Result<NodeStats, Error> {
        match self.call(link, inbox, AdminCommand::Stats, timeout).await? {
            AdminReply::Stats(stats) => Ok(*stats),
            _ => Err(Error::NoReply {
                peer: link.peer(),
                what: "stats (it answered something else)",
                waited: timeout,
            }),
        }
    }

    /// One ping's round trip and the node's clock, asking again every 200 ms until `timeout`.
    /// Other traffic that arrives meanwhile is dropped.
    pub async fn ping(
        &mut self,
        link: &Link,
        inbox: &mut Inbox,
        timeout: Duration,
    ) -> Result<Pong, Error> {
        let nonce = self.number();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = Instant::now();
            let sent_unix_ns = unix_now_ns();
            link.send(Envelope::Ping { nonce });
            let resend = (tokio::time::Instant::now() + PING_RESEND).min(deadline);
            while let Ok(Some(inbound)) = tokio::time::timeout_at(resend, inbox.recv()).await {
                if let Envelope::Pong { nonce: n, unix_ns } = inbound.envelope
                    && n == nonce
                    && inbound.peer == link.peer()
                {
                    let rtt = sent.elapsed();
                    let midpoint = i128::from(sent_unix_ns) + (rtt.as_nanos() / 2) as i128;
                    let offset_ns = (i128::from(unix_ns) - midpoint)
                        .clamp(i128::from(i64::MIN), i128::from(i64::MAX))
                        as i64;
                    return Ok(Pong { rtt, offset_ns });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NoReply {
                    peer: link.peer(),
                    what: "ping",
                    waited: timeout,
                });
            }
        }
    }
}
