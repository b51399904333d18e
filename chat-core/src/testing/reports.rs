//! The report conformance tests: a hand-built desk whose every figure is known.
#![allow(missing_docs, clippy::missing_panics_doc)]

use super::*;
use crate::report::{Csat, Dimension, Durations, ReportQuery, ReportRow};

struct Desk {
    tenant: TenantId,
    alice: Agent,
    bob: Agent,
    ids: Vec<ConversationId>,
}

fn rated(score: u8, feedback: Option<&str>, secs: i64) -> Option<Rating> {
    Some(Rating {
        score,
        feedback: feedback.map(str::to_owned),
        rated_at: at(secs),
    })
}

/// Five conversations of one tenant in the period `[T0, T0 + 1 day)` (one created two days
/// before it), and one of another tenant that must never count.
async fn desk(store: &S) -> Desk {
    let tenant = tenant(store).await;
    let contact = contact(store, tenant, None).await;
    let alice = agent(store, tenant, "Alice", Role::Agent, &[]).await;
    let bob = agent(store, tenant, "Bob", Role::Agent, &[]).await;
    let closed = |c: &mut Conversation, agent: AgentId, created: i64, first: Option<i64>| {
        c.mode = Mode::Closed;
        c.assigned_agent_id = Some(agent);
        c.created_at = at(created);
        c.updated_at = at(created);
        c.first_response_at = first.map(at);
    };
    let c1 = conversation(store, tenant, contact.id, |c| {
        closed(c, alice.id, 0, Some(60));
        c.department = Some("billing".into());
        c.tags = vec!["vip".into(), "refund".into()];
        c.closed_at = Some(at(600));
        c.rating = rated(5, Some("Great help"), 700);
    })
    .await;
    let c2 = conversation(store, tenant, contact.id, |c| {
        closed(c, alice.id, 100, Some(400));
        c.department = Some("billing".into());
        c.channel = Channel::Email;
        c.tags = vec!["refund".into()];
        c.closed_at = Some(at(1000));
        c.rating = rated(3, None, 1100);
    })
    .await;
    let c3 = conversation(store, tenant, contact.id, |c| {
        closed(c, bob.id, 200, Some(230));
        c.closed_at = Some(at(3800));
        c.rating = rated(1, Some("Too slow"), 3900);
    })
    .await;
    let c4 = conversation(store, tenant, contact.id, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(bob.id);
        c.department = Some("sales".into());
        c.created_at = at(300);
        c.updated_at = at(300);
    })
    .await;
    // Reopened twice in the period (the mode does not matter to the store).
    let mut current = c4;
    for secs in [5000, 6000] {
        let mut next = current.clone();
        next.updated_at = at(secs);
        current = store
            .update_conversation(ConversationUpdate {
                conversation: next,
                change: ConversationChange::Reopened,
                message: None,
            })
            .await
            .unwrap()
            .conversation;
    }
    // Opened two days before the period, closed in it; rated before the period.
    let c5 = conversation(store, tenant, contact.id, |c| {
        closed(c, alice.id, -2 * 86_400, Some(-2 * 86_400 + 10));
        c.department = Some("billing".into());
        c.closed_at = Some(at(500));
        c.rating = rated(2, Some("Before the period"), -60);
    })
    .await;
    // Another tenant, same instants: never counted.
    let other = super::tenant(store).await;
    let stranger = super::contact(store, other, None).await;
    conversation(store, other, stranger.id, |c| {
        closed(c, alice.id, 0, Some(1));
        c.closed_at = Some(at(2));
        c.rating = rated(4, Some("Elsewhere"), 3);
    })
    .await;
    Desk {
        tenant,
        alice,
        bob,
        ids: vec![c1.id, c2.id, c3.id, current.id, c5.id],
    }
}

fn period(desk: &Desk, agent: Option<AgentId>) -> ReportQuery {
    ReportQuery {
        tenant: desk.tenant,
        from: T0,
        to: T0 + Duration::days(1),
        agent,
    }
}

fn secs(count: u64, median: f64, p90: f64) -> Durations {
    Durations {
        count,
        median_secs: Some(median),
        p90_secs: Some(p90),
    }
}

fn row(
    key: Option<&str>,
    [opened, closed, reopened]: [u64; 3],
    first_response: Durations,
    resolution: Durations,
    scores: [u64; 5],
) -> ReportRow {
    ReportRow {
        key: key.map(str::to_owned),
        opened,
        closed,
        reopened,
        first_response,
        resolution,
        csat: Csat::from_distribution(scores),
    }
}

const OLD_RESOLUTION: f64 = 2.0 * 86_400.0 + 500.0;

pub async fn report_totals_count_opened_closed_reopened_with_median_and_p90(store: S) {
    let desk = desk(&store).await;
    let rows = store.report_rows(&period(&desk, None), None).await.unwrap();
    assert_eq!(
        rows,
        vec![row(
            None,
            [4, 4, 2],
            // First responses 30, 60, 300 s; resolutions 600, 900, 3600 s and the old one.
            secs(3, 60.0, 300.0),
            secs(4, 900.0, OLD_RESOLUTION),
            [1, 0, 1, 0, 1],
        )]
    );
    assert_eq!(rows[0].csat.average, Some(3.0));
}

pub async fn report_breaks_down_by_agent_department_channel_and_tag(store: S) {
    let desk = desk(&store).await;
    let q = period(&desk, None);
    let alice = row(
        Some(&desk.alice.id.0.to_string()),
        [2, 3, 0],
        secs(2, 60.0, 300.0),
        secs(3, 900.0, OLD_RESOLUTION),
        [0, 0, 1, 0, 1],
    );
    let bob = row(
        Some(&desk.bob.id.0.to_string()),
        [2, 1, 2],
        secs(1, 30.0, 30.0),
        secs(1, 3600.0, 3600.0),
        [1, 0, 0, 0, 0],
    );
    let mut agents = vec![alice.clone(), bob.clone()];
    agents.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        store.report_rows(&q, Some(Dimension::Agent)).await.unwrap(),
        agents
    );
    assert_eq!(
        store
            .report_rows(&q, Some(Dimension::Department))
            .await
            .unwrap(),
        vec![
            row(
                None,
                [1, 1, 0],
                secs(1, 30.0, 30.0),
                secs(1, 3600.0, 3600.0),
                [1, 0, 0, 0, 0]
            ),
            ReportRow {
                key: Some("billing".into()),
                ..alice.clone()
            },
            row(
                Some("sales"),
                [1, 0, 2],
                Durations::default(),
                Durations::default(),
                [0; 5]
            ),
        ]
    );
    assert_eq!(
        store
            .report_rows(&q, Some(Dimension::Channel))
            .await
            .unwrap(),
        vec![
            row(
                Some("email"),
                [1, 1, 0],
                secs(1, 300.0, 300.0),
                secs(1, 900.0, 900.0),
                [0, 0, 1, 0, 0]
            ),
            row(
                Some("web"),
                [3, 3, 2],
                secs(2, 30.0, 60.0),
                secs(3, 3600.0, OLD_RESOLUTION),
                [1, 0, 0, 0, 1]
            ),
        ]
    );
    assert_eq!(
        store.report_rows(&q, Some(Dimension::Tag)).await.unwrap(),
        vec![
            row(
                Some("refund"),
                [2, 2, 0],
                secs(2, 60.0, 300.0),
                secs(2, 600.0, 900.0),
                [0, 0, 1, 0, 1]
            ),
            row(
                Some("vip"),
                [1, 1, 0],
                secs(1, 60.0, 60.0),
                secs(1, 600.0, 600.0),
                [0, 0, 0, 0, 1]
            ),
        ]
    );
    // One agent's report is its row of the breakdown, as totals.
    assert_eq!(
        store
            .report_rows(&period(&desk, Some(desk.bob.id)), None)
            .await
            .unwrap(),
        vec![ReportRow { key: None, ..bob }]
    );
}

pub async fn report_series_counts_per_bucket_and_feedback_is_newest_first(store: S) {
    let desk = desk(&store).await;
    let q = period(&desk, None);
    let bounds = [
        T0,
        T0 + Duration::hours(1),
        T0 + Duration::hours(2),
        T0 + Duration::days(1),
    ];
    let points = store.report_series(&q, &bounds).await.unwrap();
    let counts: Vec<_> = points
        .iter()
        .map(|p| (p.start, p.opened, p.closed, p.reopened))
        .collect();
    assert_eq!(
        counts,
        vec![
            (bounds[0], 4, 3, 0),
            (bounds[1], 0, 1, 2),
            (bounds[2], 0, 0, 0)
        ]
    );
    let feedback = store.report_feedback(&q, 10).await.unwrap();
    let texts: Vec<_> = feedback
        .iter()
        .map(|f| (f.conversation_id, f.score, f.feedback.as_str(), f.rated_at))
        .collect();
    assert_eq!(
        texts,
        vec![
            (desk.ids[2], 1, "Too slow", at(3900)),
            (desk.ids[0], 5, "Great help", at(700)),
        ]
    );
    assert_eq!(feedback[0].agent_id, Some(desk.bob.id));
    assert_eq!(store.report_feedback(&q, 1).await.unwrap().len(), 1);
    // Gone with the conversation: its reopens too.
    store
        .delete_conversation(desk.tenant, desk.ids[3], at(7000))
        .await
        .unwrap();
    let rows = store.report_rows(&q, None).await.unwrap();
    assert_eq!((rows[0].opened, rows[0].reopened), (3, 0));
}

/// A deterministic pseudo-random number for `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub async fn report_queries_agree_with_the_in_memory_definition_on_a_generated_desk(store: S) {
    use crate::report::{Interval, ReportPeriod, feedback_of, report_rows, series_points};
    let tenant = tenant(&store).await;
    let contact = contact(&store, tenant, None).await;
    let mut agents = Vec::new();
    for name in ["Ann", "Bob", "Cy"] {
        agents.push(agent(&store, tenant, name, Role::Agent, &[]).await.id);
    }
    let mut reopens = Vec::new();
    // 120 conversations over three days around the period, some reopened more than once.
    for i in 0..120u64 {
        let r = |salt: u64| mix(i * 31 + salt);
        let created = (r(1) % (3 * 86_400)) as i64 - 86_400;
        let mut c = conversation(&store, tenant, contact.id, |c| {
            c.created_at = at(created);
            c.updated_at = at(created);
            c.channel = [Channel::Web, Channel::Email, Channel::Api][(r(2) % 3) as usize];
            c.department =
                [None, Some("billing".into()), Some("sales".into())][(r(3) % 3) as usize].clone();
            c.tags = [
                vec![],
                vec!["vip".into()],
                vec!["vip".into(), "refund".into()],
            ][(r(4) % 3) as usize]
                .clone();
            c.assigned_agent_id = (r(5) % 4 != 0).then(|| agents[(r(6) % 3) as usize]);
            c.first_response_at = (r(7) % 3 != 0).then(|| at(created + (r(8) % 3_000) as i64));
            if r(9) % 3 != 0 {
                let closed = created + (r(10) % 90_000) as i64;
                c.mode = Mode::Closed;
                c.closed_at = Some(at(closed));
                c.rating = (r(11) % 2 == 0).then(|| Rating {
                    score: 1 + (r(12) % 5) as u8,
                    feedback: (r(13) % 2 == 0).then(|| format!("text {i}")),
                    rated_at: at(closed + (r(14) % 100) as i64),
                });
            }
        })
        .await;
        for k in 0..r(15) % 3 {
            let mut next = c.clone();
            next.updated_at = at(created + 50 + (k as i64) * 20_000);
            c = store
                .update_conversation(ConversationUpdate {
                    conversation: next,
                    change: ConversationChange::Reopened,
                    message: None,
                })
                .await
                .unwrap()
                .conversation;
            reopens.push((c.id, c.updated_at));
        }
    }
    let all = store
        .list_conversations(&ConversationQuery {
            limit: 1000,
            ..ConversationQuery::new(tenant, Scope::Tenant)
        })
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 120);
    let period = ReportPeriod::parse("2026-01-01", "2026-01-01", Some("Asia/Kolkata")).unwrap();
    let (from, to) = period.instants().unwrap();
    for agent in [None, Some(agents[1])] {
        let q = ReportQuery {
            tenant,
            from,
            to,
            agent,
        };
        for by in [None]
            .into_iter()
            .chain(crate::report::Dimension::ALL.iter().copied().map(Some))
        {
            assert_eq!(
                store.report_rows(&q, by).await.unwrap(),
                report_rows(&all, &reopens, &q, by),
                "rows by {by:?} for {agent:?}"
            );
        }
        let bounds = period.bounds(Interval::Hour).unwrap();
        assert_eq!(
            store.report_series(&q, &bounds).await.unwrap(),
            series_points(&all, &reopens, &q, &bounds)
        );
        assert_eq!(
            store.report_feedback(&q, 7).await.unwrap(),
            feedback_of(&all, &q, 7)
        );
    }
}
