//! Conformance of presence leases (several servers hold an agent's presence; it ends
//! with the last of them, or when their leases lapse) and of the shared routing turn.

use super::*;

/// Agent `a`'s stored availability.
async fn availability(store: &S, t: TenantId, a: AgentId) -> Availability {
    store.agent(t, a).await.unwrap().unwrap().availability
}

/// An agent stored `offline` (the conformance helper makes them online).
async fn offline_agent(store: &S, t: TenantId, name: &str) -> Agent {
    let mut a = agent(store, t, name, Role::Agent, &[]).await;
    a.availability = Availability::Offline;
    store.update_agent(&a).await.unwrap();
    a
}

fn availability_of(events: &[Event]) -> Vec<(AgentId, Availability)> {
    events
        .iter()
        .map(|e| match &e.payload {
            EventPayload::AgentUpdated { agent } => (agent.id, agent.availability),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

pub async fn presence_lasts_until_the_last_node_holding_it_lets_go(store: S) {
    let t = tenant(&store).await;
    let a = offline_agent(&store, t, "Ann").await;
    let (one, two) = (id(), id());
    let online = store
        .hold_presence(t, one, &[a.id], at(30), at(0))
        .await
        .unwrap();
    assert_eq!(availability_of(&online), [(a.id, Availability::Online)]);
    assert!(online[0].staff_only);
    let head = store.event_head(t).await.unwrap();
    assert_eq!(online[0].seq, head, "the change is in the log");
    match &online[0].payload {
        EventPayload::AgentUpdated { agent } => assert_eq!(agent.updated_at, at(0)),
        other => panic!("unexpected {other:?}"),
    }
    // A renewal, and a second server's lease, change nothing visible.
    let renewed = store.hold_presence(t, one, &[a.id], at(40), at(10)).await;
    assert!(renewed.unwrap().is_empty());
    let second = store.hold_presence(t, two, &[a.id], at(45), at(15)).await;
    assert!(second.unwrap().is_empty());
    assert_eq!(store.event_head(t).await.unwrap(), head);
    // The first server lets go: the second still holds Ann online.
    let released = store.release_presence(t, one, a.id, at(20)).await.unwrap();
    assert_eq!(released, None);
    assert_eq!(availability(&store, t, a.id).await, Availability::Online);
    // Letting go twice, or of an agent never held, changes nothing.
    assert_eq!(
        store.release_presence(t, one, a.id, at(21)).await.unwrap(),
        None
    );
    // The last one lets go: Ann is offline, logged once.
    let gone = store.release_presence(t, two, a.id, at(22)).await.unwrap();
    assert_eq!(
        availability_of(&gone.into_iter().collect::<Vec<_>>()),
        [(a.id, Availability::Offline)]
    );
    assert_eq!(availability(&store, t, a.id).await, Availability::Offline);
    assert_eq!(store.event_head(t).await.unwrap(), head + 1);
}

pub async fn presence_lapses_when_its_node_stops_renewing(store: S) {
    let t = tenant(&store).await;
    let a = offline_agent(&store, t, "Ann").await;
    let b = offline_agent(&store, t, "Bob").await;
    // Cleo went online through the API, without a connection: no lease holds her.
    let cleo = agent(&store, t, "Cleo", Role::Agent, &[]).await;
    let (dead, alive) = (id(), id());
    let online = store
        .hold_presence(t, dead, &[a.id, b.id], at(30), at(0))
        .await
        .unwrap();
    let mut flipped = availability_of(&online);
    flipped.sort();
    let mut expected = vec![(a.id, Availability::Online), (b.id, Availability::Online)];
    expected.sort();
    assert_eq!(flipped, expected);
    // Bob is also connected to a server that keeps renewing.
    store
        .hold_presence(t, alive, &[b.id], at(60), at(5))
        .await
        .unwrap();
    // Not expired yet: nothing lapses.
    assert!(store.lapse_presence(t, at(29)).await.unwrap().is_empty());
    // The dead server's leases expire: Ann goes offline; Bob and Cleo stay online.
    let lapsed = store.lapse_presence(t, at(30)).await.unwrap();
    assert_eq!(availability_of(&lapsed), [(a.id, Availability::Offline)]);
    assert_eq!(availability(&store, t, a.id).await, Availability::Offline);
    assert_eq!(availability(&store, t, b.id).await, Availability::Online);
    assert_eq!(availability(&store, t, cleo.id).await, Availability::Online);
    // A lapse is done once.
    assert!(store.lapse_presence(t, at(31)).await.unwrap().is_empty());
    // Another tenant's lapse does not touch this one.
    let other = tenant(&store).await;
    assert!(
        store
            .lapse_presence(other, at(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(availability(&store, t, b.id).await, Availability::Online);
    // The renewing server's lease lapses too once it stops.
    let lapsed = store.lapse_presence(t, at(60)).await.unwrap();
    assert_eq!(availability_of(&lapsed), [(b.id, Availability::Offline)]);
    assert_eq!(availability(&store, t, cleo.id).await, Availability::Online);
}

pub async fn presence_keeps_a_chosen_availability(store: S) {
    let t = tenant(&store).await;
    let a = offline_agent(&store, t, "Ann").await;
    let node = id();
    store
        .hold_presence(t, node, &[a.id], at(30), at(0))
        .await
        .unwrap();
    // Ann chooses away while connected: renewals keep it, and her leaving does not
    // make her offline (only online agents go offline with their presence).
    let mut away = store.agent(t, a.id).await.unwrap().unwrap();
    away.availability = Availability::Away;
    store.update_agent(&away).await.unwrap();
    let renewed = store.hold_presence(t, node, &[a.id], at(40), at(10)).await;
    assert!(renewed.unwrap().is_empty());
    assert_eq!(
        store.release_presence(t, node, a.id, at(11)).await.unwrap(),
        None
    );
    assert_eq!(availability(&store, t, a.id).await, Availability::Away);
    // A lapsed server that renews again (it was only slow) puts its agent back online.
    let b = offline_agent(&store, t, "Bob").await;
    store
        .hold_presence(t, node, &[b.id], at(30), at(0))
        .await
        .unwrap();
    let lapsed = store.lapse_presence(t, at(30)).await.unwrap();
    assert_eq!(availability_of(&lapsed), [(b.id, Availability::Offline)]);
    let back = store
        .hold_presence(t, node, &[b.id], at(70), at(40))
        .await
        .unwrap();
    assert_eq!(availability_of(&back), [(b.id, Availability::Online)]);
    // Agents of another tenant, and unknown ones, are skipped.
    let other = tenant(&store).await;
    let stray = store
        .hold_presence(other, node, &[b.id, AgentId(id())], at(70), at(40))
        .await
        .unwrap();
    assert!(stray.is_empty());
    assert_eq!(
        store
            .release_presence(other, node, b.id, at(41))
            .await
            .unwrap(),
        None
    );
    assert_eq!(availability(&store, t, b.id).await, Availability::Online);
}

pub async fn the_routing_turn_moves_with_each_assignment_and_only_from_where_it_was(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let bob = agent(&store, t, "Bob", Role::Agent, &[]).await;
    let mut queued = Vec::new();
    for round in 0..10 {
        queued.push(
            conversation(&store, t, k.id, |c| {
                c.mode = Mode::Queued;
                c.queued_at = Some(at(round));
            })
            .await,
        );
    }
    let assignment = |c: &Conversation, agent: AgentId| {
        let mut next = c.clone();
        next.mode = Mode::Agent;
        next.assigned_agent_id = Some(agent);
        next.queued_at = None;
        ConversationUpdate {
            conversation: next,
            change: ConversationChange::Assigned {
                from: None,
                to: Some(agent),
            },
            message: None,
        }
    };
    assert_eq!(store.routing_turn(t).await.unwrap(), None);
    store
        .assign_in_turn(assignment(&queued[0], ann.id), 10, None)
        .await
        .unwrap();
    assert_eq!(store.routing_turn(t).await.unwrap(), Some(ann.id));
    // A pass that read the turn before that assignment writes nothing.
    let stale = store
        .assign_in_turn(assignment(&queued[1], ann.id), 10, None)
        .await;
    assert!(
        matches!(&stale, Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::State),
        "{stale:?}"
    );
    let unchanged = store.conversation(t, queued[1].id).await.unwrap().unwrap();
    assert_eq!(unchanged, queued[1]);
    // A refused capacity leaves the turn where it was.
    let full = store
        .assign_in_turn(assignment(&queued[1], bob.id), 0, Some(ann.id))
        .await;
    assert!(full.is_err());
    assert_eq!(store.routing_turn(t).await.unwrap(), Some(ann.id));
    // Eight passes at once from the same turn (several servers): exactly one takes it.
    let passes: Vec<_> = queued[2..]
        .iter()
        .map(|c| {
            let store = store.clone();
            let update = assignment(c, bob.id);
            tokio::spawn(async move { store.assign_in_turn(update, 10, Some(ann.id)).await })
        })
        .collect();
    let mut won = 0;
    for pass in passes {
        match pass.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Conflict(c)) => assert_eq!(c.kind(), crate::ConflictKind::State),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.routing_turn(t).await.unwrap(), Some(bob.id));
    // The turn is the tenant's own.
    let other = tenant(&store).await;
    assert_eq!(store.routing_turn(other).await.unwrap(), None);
}
