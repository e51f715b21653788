//! Unit tests of the leader role.

use super::*;
use crate::message::{AcceptedBatch, ClientRequest, PromiseAll, Refused, known_digest};

const MS: Duration = Duration::from_millis(1);

fn nodes() -> Vec<NodeId> {
    vec![NodeId(1), NodeId(2), NodeId(3)]
}

fn leader(id: u32, config: impl FnOnce(&mut LeaderConfig)) -> Leader {
    let mut c = LeaderConfig::new(nodes());
    config(&mut c);
    Leader::new(NodeId(id), c, 7).unwrap()
}

fn drain(l: &mut Leader) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn events(l: &mut Leader) -> Vec<LeaderEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

fn value(v: &'static str) -> Value {
    Value::from_static(v.as_bytes())
}

fn promise(
    from: u32,
    ballot: ProposalId,
    accepted: Vec<(Instance, ProposalId, Value)>,
    high_slots: Vec<(u64, u64)>,
) -> Message {
    Message::PromiseAll(PromiseAll {
        ballot,
        from: NodeId(from),
        accepted,
        high_slots,
        chosen_through: vec![],
        answers: known_digest(&[]),
    })
}

/// A pinned node 1 that campaigned; returns it with its ballot.
fn candidate() -> (Leader, ProposalId) {
    let mut l = leader(1, |c| c.initial_leader = Some(NodeId(1)));
    l.start(Time::ZERO, ProposalId::ZERO);
    let sent = drain(&mut l);
    let Message::PrepareAll(p) = &sent[0].message else {
        panic!("{sent:?}")
    };
    assert_eq!(sent[0].to, To::AllNodes);
    (l, p.ballot)
}

fn request(client: u32, key: u64, v: &'static str) -> Message {
    Message::ClientRequest(ClientRequest {
        key,
        value: value(v),
        client: ProposerId(client),
        via: None,
    })
}

#[test]
fn a_new_leader_carries_on_the_highest_accepted_value_whatever_the_promise_order() {
    let i = Instance::new(5, 2);
    let low = ProposalId::new(1, 2);
    let high = ProposalId::new(2, 3);
    // Node 2 accepted an old value, node 3 a newer one and slot 4; node 1 (the candidate)
    // nothing. Slot 3 nobody reported.
    let answers = [
        (2, vec![(i, low, value("old"))], vec![(5, 2)]),
        (
            3,
            vec![
                (i, high, value("new")),
                (Instance::new(5, 4), high, value("four")),
            ],
            vec![(5, 4)],
        ),
    ];
    for order in [[0, 1], [1, 0]] {
        let (mut l, ballot) = candidate();
        l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
            .unwrap();
        assert!(!l.is_leading(), "its own promise is not a quorum");
        let first = order[0];
        let (from, accepted, high_slots) = answers[first].clone();
        l.handle(Time::ZERO, &promise(from, ballot, accepted, high_slots))
            .unwrap();
        assert!(l.is_leading(), "a majority of three with one more");
        let proposed: Vec<(Instance, Value)> = drain(&mut l)
            .into_iter()
            .filter_map(|t| match t.message {
                Message::AcceptBatch(b) => {
                    assert_eq!(b.ballot, ballot);
                    Some(b.entries)
                }
                _ => None,
            })
            .flatten()
            .collect();
        let expected: Vec<(Instance, Value)> = if first == 0 {
            // Only node 2 heard: its value, and empty values for slots 0 and 1.
            vec![
                (Instance::new(5, 0), Value::new()),
                (Instance::new(5, 1), Value::new()),
                (i, value("old")),
            ]
        } else {
            vec![
                (Instance::new(5, 0), Value::new()),
                (Instance::new(5, 1), Value::new()),
                (i, value("new")),
                (Instance::new(5, 3), Value::new()),
                (Instance::new(5, 4), value("four")),
            ]
        };
        let mut proposed = proposed;
        proposed.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(proposed, expected, "order {order:?}");
        // The next slot of key 5 is above every slot a quorum member accepted.
        l.handle(Time::ZERO, &request(9, 5, "fresh")).unwrap();
        let next = events(&mut l).into_iter().rev().find_map(|e| match e {
            LeaderEvent::Proposed { instance, .. } => Some(instance),
            _ => None,
        });
        let next_free = if first == 0 { 3 } else { 5 };
        assert_eq!(next, Some(Instance::new(5, next_free)), "order {order:?}");
    }
    // With both heard, the higher ballot's value wins whichever came first.
    for order in [[0, 1], [1, 0]] {
        let (mut l, ballot) = candidate();
        for &k in &order {
            let (from, accepted, high_slots) = answers[k].clone();
            l.handle(Time::ZERO, &promise(from, ballot, accepted, high_slots))
                .unwrap();
        }
        l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
            .unwrap();
        let carried: Vec<Value> = drain(&mut l)
            .into_iter()
            .filter_map(|t| match t.message {
                Message::AcceptBatch(b) => Some(b.entries),
                _ => None,
            })
            .flatten()
            .filter(|(instance, _)| *instance == i)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(carried, [value("new")], "order {order:?}");
    }
}

#[test]
fn slots_known_chosen_are_neither_asked_for_nor_proposed_again() {
    let mut l = leader(1, |_| {});
    l.start(Time::ZERO, ProposalId::ZERO);
    // A leader's notices: key 5 slots 0, 1 and 3 are chosen.
    let heartbeat = Message::Heartbeat(Heartbeat {
        ballot: ProposalId::new(1, 2),
        from: NodeId(2),
        commits: vec![
            Instance::new(5, 0),
            Instance::new(5, 1),
            Instance::new(5, 3),
        ],
        chosen_through: vec![],
    });
    l.handle(Time::ZERO, &heartbeat).unwrap();
    let at = l.poll_timeout().unwrap();
    l.handle_timeout(at);
    let sent = drain(&mut l);
    let Message::PrepareAll(p) = &sent[0].message else {
        panic!("{sent:?}")
    };
    assert_eq!(p.known, [(5, 2)]);
    let ballot = p.ballot;
    let answering = |message: Message| match message {
        Message::PromiseAll(promise) => Message::PromiseAll(PromiseAll {
            answers: known_digest(&[(5, 2)]),
            ..promise
        }),
        other => other,
    };
    let reported = vec![(Instance::new(5, 3), ProposalId::new(1, 2), value("three"))];
    // A promise that answers another campaign's `known` (this ballot, before a crash) is not
    // counted, whatever it reports.
    l.handle(at, &promise(2, ballot, vec![], vec![(5, 3)]))
        .unwrap();
    l.handle(at, &promise(1, ballot, vec![], vec![(5, 3)]))
        .unwrap();
    assert!(
        !l.is_leading(),
        "two promises to another campaign elected it"
    );
    l.handle(at, &answering(promise(1, ballot, vec![], vec![(5, 3)])))
        .unwrap();
    l.handle(at, &answering(promise(2, ballot, reported, vec![(5, 3)])))
        .unwrap();
    let proposed: Vec<(Instance, Value)> = drain(&mut l)
        .into_iter()
        .filter_map(|t| match t.message {
            Message::AcceptBatch(b) => Some(b.entries),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(proposed, [(Instance::new(5, 2), Value::new())]);
    assert_eq!(l.stats().noops, 1);
}

#[test]
fn slots_a_promiser_knows_chosen_are_not_carried_on_whatever_another_reports() {
    // Node 3's acceptor had notices that slots 0 and 1 of key 5 are chosen; whatever
    // another acceptor reports for them, a leader elected with node 3 carries none on.
    let mut from_3 = PromiseAll {
        ballot: ProposalId::ZERO,
        from: NodeId(3),
        accepted: vec![],
        high_slots: vec![(5, 1)],
        chosen_through: vec![(5, 2)],
        answers: known_digest(&[]),
    };
    let (mut l, ballot) = candidate();
    from_3.ballot = ballot;
    // Its own acceptor missed the decision of slot 1 and holds an older value.
    let stale = vec![(Instance::new(5, 1), ProposalId::new(1, 2), value("stale"))];
    l.handle(Time::ZERO, &promise(1, ballot, stale, vec![(5, 1)]))
        .unwrap();
    l.handle(Time::ZERO, &Message::PromiseAll(from_3)).unwrap();
    let carried: Vec<(Instance, Value)> = drain(&mut l)
        .into_iter()
        .filter_map(|t| match t.message {
            Message::AcceptBatch(b) => Some(b.entries),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(carried.is_empty(), "{carried:?}");
    l.handle(Time::ZERO, &request(9, 5, "next")).unwrap();
    let next = events(&mut l).into_iter().rev().find_map(|e| match e {
        LeaderEvent::Proposed { instance, .. } => Some(instance),
        _ => None,
    });
    assert_eq!(next, Some(Instance::new(5, 2)));
}

#[test]
fn requests_get_consecutive_slots_and_an_answer_once_a_quorum_accepted() {
    let (mut l, ballot) = candidate();
    l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
        .unwrap();
    l.handle(Time::ZERO, &promise(2, ballot, vec![], vec![]))
        .unwrap();
    let _ = drain(&mut l);
    for (client, v) in [(10, "a"), (11, "b")] {
        l.handle(Time::ZERO, &request(client, 7, v)).unwrap();
    }
    // A retry of a request in flight is not given a second slot.
    l.handle(Time::ZERO, &request(10, 7, "a")).unwrap();
    let sent = drain(&mut l);
    let entries: Vec<Instance> = sent
        .iter()
        .filter_map(|t| match &t.message {
            Message::AcceptBatch(b) => Some(b.entries.iter().map(|(i, _)| *i)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(entries, [Instance::new(7, 0), Instance::new(7, 1)]);
    let ack = |from: u32| {
        Message::AcceptedBatch(AcceptedBatch {
            ballot,
            from: NodeId(from),
            instances: vec![Instance::new(7, 0), Instance::new(7, 1)],
        })
    };
    l.handle(Time::ZERO, &ack(1)).unwrap();
    assert!(drain(&mut l).is_empty(), "one of three is not a quorum");
    l.handle(Time::ZERO, &ack(1)).unwrap();
    assert!(drain(&mut l).is_empty(), "a duplicate counts once");
    l.handle(Time::ZERO, &ack(3)).unwrap();
    let replies: Vec<(To, Instance)> = drain(&mut l)
        .into_iter()
        .filter_map(|t| match t.message {
            Message::ClientReply(r) => Some((t.to, r.instance)),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        [
            (To::Proposer(ProposerId(10)), Instance::new(7, 0)),
            (To::Proposer(ProposerId(11)), Instance::new(7, 1))
        ]
    );
    assert_eq!(l.stats().decided, 2);
    // With no batch to carry them, commit notices ride on the next heartbeat, which this
    // node's own acceptor hears too; an empty heartbeat goes to the others only.
    let mut heartbeat = l.clone();
    let at = heartbeat.poll_timeout().unwrap();
    heartbeat.handle_timeout(at);
    let sent = drain(&mut heartbeat);
    assert!(
        matches!(&sent[..], [t] if t.to == To::AllNodes && matches!(&t.message, Message::Heartbeat(h) if h.commits.len() == 2 && h.chosen_through == [(7, 2)])),
        "{sent:?}"
    );
    let at = heartbeat.poll_timeout().unwrap();
    heartbeat.handle_timeout(at);
    let sent = drain(&mut heartbeat);
    assert!(
        matches!(&sent[..], [t] if t.to == To::Nodes(vec![NodeId(2), NodeId(3)])),
        "{sent:?}"
    );
    // Or on the next batch.
    l.handle(Time::ZERO, &request(12, 8, "c")).unwrap();
    let next = drain(&mut l);
    assert!(matches!(&next[0].message, Message::AcceptBatch(b) if b.commits.len() == 2));
    // The client whose reply was lost asks again and hears the same answer.
    l.handle(Time::ZERO, &request(10, 7, "a")).unwrap();
    assert!(
        matches!(&drain(&mut l)[..], [t] if matches!(&t.message, Message::ClientReply(r) if r.instance == Instance::new(7, 0)))
    );
}

#[test]
fn waiting_requests_form_larger_batches_while_the_pipeline_is_full() {
    let (mut l, ballot) = candidate();
    l.config.pipeline = 1;
    l.config.batch = 3;
    l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
        .unwrap();
    l.handle(Time::ZERO, &promise(2, ballot, vec![], vec![]))
        .unwrap();
    let _ = drain(&mut l);
    for client in 0..5 {
        l.handle(Time::ZERO, &request(client, u64::from(client), "x"))
            .unwrap();
    }
    let sizes: Vec<usize> = drain(&mut l)
        .iter()
        .filter_map(|t| match &t.message {
            Message::AcceptBatch(b) => Some(b.entries.len()),
            _ => None,
        })
        .collect();
    // One batch of one opens the pipeline; then three wait for a full batch, which goes.
    assert_eq!(sizes, [1, 3]);
    assert_eq!(l.in_flight(), 5);
}

#[test]
fn a_refused_leader_steps_down_and_sends_waiting_clients_to_the_new_one() {
    let (mut l, ballot) = candidate();
    l.config.pipeline = 1;
    l.config.batch = 8;
    l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
        .unwrap();
    l.handle(Time::ZERO, &promise(3, ballot, vec![], vec![]))
        .unwrap();
    l.handle(Time::ZERO, &request(1, 1, "a")).unwrap();
    l.handle(Time::ZERO, &request(2, 1, "b")).unwrap();
    let _ = drain(&mut l);
    let higher = ProposalId::new(ballot.high + 1, 2);
    l.handle(
        Time::ZERO,
        &Message::Refused(Refused {
            ballot,
            promised: higher,
            from: NodeId(3),
        }),
    )
    .unwrap();
    assert!(!l.is_leading());
    assert_eq!(l.known_leader(), Some(NodeId(2)));
    let sent = drain(&mut l);
    assert!(
        matches!(&sent[..], [t] if t.to == To::Proposer(ProposerId(2)) && matches!(&t.message, Message::Redirect(r) if r.leader == Some(NodeId(2)))),
        "{sent:?}"
    );
    assert!(
        events(&mut l)
            .iter()
            .any(|e| matches!(e, LeaderEvent::SteppedDown { by, .. } if *by == higher))
    );
}

#[test]
fn followers_redirect_or_forward_once_and_campaign_when_the_leader_falls_silent() {
    let mut f = leader(2, |c| c.forward = ForwardMode::Forward);
    f.start(Time::ZERO, ProposalId::ZERO);
    let heartbeat = Message::Heartbeat(Heartbeat {
        ballot: ProposalId::new(1, 1),
        from: NodeId(1),
        commits: vec![],
        chosen_through: vec![],
    });
    f.handle(Time::ZERO, &heartbeat).unwrap();
    f.handle(Time::ZERO, &request(4, 1, "x")).unwrap();
    let sent = drain(&mut f);
    assert!(
        matches!(&sent[..], [t] if t.to == To::Node(NodeId(1)) && matches!(&t.message, Message::ClientRequest(r) if r.via == Some(NodeId(2))))
    );
    // A forwarded request reaching a node that does not lead goes back to the client.
    let forwarded = Message::ClientRequest(ClientRequest {
        key: 1,
        value: value("x"),
        client: ProposerId(4),
        via: Some(NodeId(3)),
    });
    f.handle(Time::ZERO, &forwarded).unwrap();
    assert!(matches!(&drain(&mut f)[..], [t] if matches!(t.message, Message::Redirect(_))));
    let deadline = f.poll_timeout().unwrap();
    assert!(deadline >= Time::ZERO + 100 * MS && deadline < Time::ZERO + 200 * MS);
    f.handle_timeout(deadline);
    let sent = drain(&mut f);
    assert!(
        matches!(&sent[0].message, Message::PrepareAll(p) if p.ballot == ProposalId::new(2, 2)),
        "{sent:?}"
    );
}

#[test]
fn a_refused_campaign_is_a_duel_and_backs_off() {
    let (mut l, ballot) = candidate();
    let higher = ProposalId::new(ballot.high, 3);
    for from in [2, 3] {
        l.handle(
            Time::ZERO,
            &Message::Refused(Refused {
                ballot,
                promised: higher,
                from: NodeId(from),
            }),
        )
        .unwrap();
    }
    assert_eq!(l.stats().preempted, 1);
    let retry = l.poll_timeout().unwrap();
    assert!(
        retry <= Time::ZERO + 2 * MS,
        "the first backoff is at most 1 ms"
    );
    l.handle_timeout(retry);
    let sent = drain(&mut l);
    assert!(matches!(&sent[0].message, Message::PrepareAll(p) if p.ballot > higher));
}

#[test]
fn thrifty_phase_two_goes_to_a_quorum_of_the_fastest() {
    let (mut l, ballot) = candidate();
    l.config.thrifty = true;
    l.config.pipeline = 8;
    for from in [1, 2] {
        l.handle(Time::ZERO, &promise(from, ballot, vec![], vec![]))
            .unwrap();
    }
    let _ = drain(&mut l);
    l.handle(Time::ZERO, &request(1, 1, "a")).unwrap();
    let sent = drain(&mut l);
    assert_eq!(sent[0].to, To::Nodes(vec![NodeId(1), NodeId(2)]));
    // Node 2 stays silent past the phase-2 timeout: retransmitted to all, then avoided.
    let ack = Message::AcceptedBatch(AcceptedBatch {
        ballot,
        from: NodeId(1),
        instances: vec![Instance::new(1, 0)],
    });
    l.handle(Time::ZERO + MS, &ack).unwrap();
    l.handle_timeout(Time::ZERO + 50 * MS);
    let sent = drain(&mut l);
    assert!(
        sent.iter()
            .any(|t| t.to == To::AllNodes && matches!(t.message, Message::AcceptBatch(_)))
    );
    l.handle(Time::ZERO + 50 * MS, &request(2, 2, "b")).unwrap();
    let sent = drain(&mut l);
    assert_eq!(
        sent.last().unwrap().to,
        To::Nodes(vec![NodeId(1), NodeId(3)])
    );
}

#[test]
fn promises_from_made_up_nodes_or_with_unfillable_gaps_elect_nobody() {
    let (mut l, ballot) = candidate();
    l.handle(Time::ZERO, &promise(1, ballot, vec![], vec![]))
        .unwrap();
    // Two forged promises from nodes the cluster does not have, then one that reports a slot
    // far above anything known chosen: none counts toward the quorum.
    for stranger in [7, 8] {
        l.handle(Time::ZERO, &promise(stranger, ballot, vec![], vec![]))
            .unwrap();
    }
    l.handle(
        Time::ZERO,
        &promise(2, ballot, vec![], vec![(5, election::MAX_FILL_PER_KEY + 1)]),
    )
    .unwrap();
    assert!(!l.is_leading());
    assert_eq!(l.stats().refused_promises, 3);
    // An honest member's promise completes it; its gap of a few slots is filled.
    l.handle(Time::ZERO, &promise(3, ballot, vec![], vec![(5, 3)]))
        .unwrap();
    assert!(l.is_leading());
    assert_eq!(l.stats().noops, 4);
}

#[test]
fn a_campaign_above_the_highest_ballot_saturates_rather_than_wraps() {
    let mut l = leader(1, |c| c.initial_leader = Some(NodeId(1)));
    l.start(Time::ZERO, ProposalId::new(u64::MAX, 3));
    let sent = drain(&mut l);
    let Message::PrepareAll(p) = &sent[0].message else {
        panic!("{sent:?}")
    };
    assert_eq!(p.ballot, ProposalId::new(u64::MAX, 1));
}

#[test]
fn large_values_are_batched_by_bytes_as_well_as_by_count() {
    // Requests that wait for a campaign go out together once it is won.
    let (mut l, ballot) = candidate();
    let big = Value::from(vec![7u8; MAX_BATCH_BYTES / 3 + 1]);
    for client in 0..5 {
        let request = Message::ClientRequest(ClientRequest {
            key: u64::from(client),
            value: big.clone(),
            client: ProposerId(client),
            via: None,
        });
        l.handle(Time::ZERO, &request).unwrap();
    }
    for from in [1, 2] {
        l.handle(Time::ZERO, &promise(from, ballot, vec![], vec![]))
            .unwrap();
    }
    assert!(l.is_leading());
    // Two such values fill a batch's bytes, not the 64 entries its count allows.
    let sizes: Vec<usize> = drain(&mut l)
        .into_iter()
        .filter_map(|t| match t.message {
            Message::AcceptBatch(b) => Some(b.entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
}

#[test]
fn requests_for_keys_past_the_limit_are_dropped_and_counted() {
    let mut l = leader(1, |c| {
        c.initial_leader = Some(NodeId(1));
        c.max_keys = 2;
    });
    l.start(Time::ZERO, ProposalId::ZERO);
    let ballot = match &drain(&mut l)[0].message {
        Message::PrepareAll(p) => p.ballot,
        other => panic!("{other:?}"),
    };
    for from in [1, 2] {
        l.handle(Time::ZERO, &promise(from, ballot, vec![], vec![]))
            .unwrap();
    }
    drain(&mut l);
    for key in 0..3 {
        l.handle(Time::ZERO, &request(key as u32, key, "v"))
            .unwrap();
    }
    let proposed: Vec<u64> = events(&mut l)
        .into_iter()
        .filter_map(|e| match e {
            LeaderEvent::Proposed { instance, .. } => Some(instance.key),
            _ => None,
        })
        .collect();
    assert_eq!(proposed, [0, 1]);
    assert_eq!(l.stats().refused_requests, 1);
}
