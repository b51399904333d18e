//! `EXPLAIN QUERY PLAN` of the hot queries: each must search an index, never scan a table
//! or sort in a temporary b-tree.

use chat_core::store::{AssignedFilter, ConversationCursor, ConversationQuery, Scope};
use chat_core::{AgentId, ConversationId, Mode, TenantId};
use rusqlite::Connection;
use rusqlite::types::Value;
use uuid::Uuid;

use crate::search::{WordIndex, search_path};
use crate::{SqliteStore, list, read};

/// A migrated database, opened raw with its search file attached as the readers have it.
fn database() -> (Connection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plans.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    crate::connection::configure(&conn, &crate::Options::default()).unwrap();
    conn.execute(
        "ATTACH DATABASE ?1 AS search",
        [search_path(&path).to_str().unwrap()],
    )
    .unwrap();
    (conn, dir)
}

/// The plan's detail lines, joined.
fn plan(conn: &Connection, sql: &str, params: &[Value]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |row| {
            row.get::<_, String>(3)
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

fn assert_uses(plan: &str, index: &str) {
    assert!(
        plan.contains(&format!("USING INDEX {index}"))
            || plan.contains(&format!("USING COVERING INDEX {index}"))
            || plan.contains(index),
        "expected {index} in:\n{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "sorts in a temporary b-tree:\n{plan}"
    );
    for line in plan.lines() {
        assert!(
            !line.starts_with("SCAN ") || line.contains("INDEX"),
            "scans a table:\n{plan}"
        );
    }
}

fn blob() -> Value {
    Value::Blob(Uuid::nil().as_bytes().to_vec())
}

#[test]
fn latest_messages_use_the_sequence_index() {
    let (conn, _dir) = database();
    let params = [
        blob(),
        blob(),
        Value::Integer(i64::MAX),
        Value::Integer(1),
        Value::Integer(50),
    ];
    assert_uses(&plan(&conn, read::LATEST_MESSAGES, &params), "messages_seq");
}

#[test]
fn events_since_use_the_primary_key() {
    let (conn, _dir) = database();
    let p = plan(
        &conn,
        read::EVENTS_SINCE,
        &[blob(), Value::Integer(0), Value::Integer(100)],
    );
    assert_uses(&p, "sqlite_autoindex_events_1");
}

#[test]
fn event_head_reads_the_end_of_the_primary_key() {
    let (conn, _dir) = database();
    assert_uses(
        &plan(&conn, read::EVENT_HEAD, &[blob()]),
        "sqlite_autoindex_events_1",
    );
}

#[test]
fn queue_order_uses_the_partial_queue_index() {
    let (conn, _dir) = database();
    assert_uses(
        &plan(&conn, read::QUEUE, &[blob(), Value::Integer(10)]),
        "conversations_queue",
    );
}

#[test]
fn verified_contact_lookup_uses_the_verified_email_index() {
    let (conn, _dir) = database();
    let p = plan(
        &conn,
        read::VERIFIED_CONTACT,
        &[blob(), Value::Text("a@b.c".into())],
    );
    assert_uses(&p, "contacts_verified_email");
}

#[test]
fn agent_loads_use_the_assignment_index() {
    let (conn, _dir) = database();
    assert_uses(
        &plan(&conn, read::AGENT_LOADS, &[blob()]),
        "conversations_assigned",
    );
}

fn page_plan(conn: &Connection, q: &ConversationQuery) -> String {
    let (sql, params) = list::page_query(q, WordIndex::Scan);
    plan(conn, &sql, &params)
}

#[test]
fn inbox_of_one_mode_is_read_in_index_order() {
    let (conn, _dir) = database();
    let q = ConversationQuery {
        modes: vec![Mode::Agent],
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    assert_uses(&page_plan(&conn, &q), "conversations_mode_updated");
    let next = ConversationQuery {
        cursor: Some(ConversationCursor {
            updated_at_ns: 5,
            id: ConversationId(Uuid::nil()),
        }),
        ..q
    };
    assert_uses(&page_plan(&conn, &next), "conversations_mode_updated");
}

/// Asserts that `plan` is the page merged from `parts` modes' inboxes, each read newest
/// first along `conversations_mode_updated` (never the tenant's index, dropped by migration
/// 0020), with no sort and no table scan.
fn assert_merges_modes(plan: &str, parts: usize) {
    assert_uses(plan, "conversations_mode_updated");
    assert!(plan.contains("MERGE (UNION ALL)"), "{plan}");
    assert_eq!(
        plan.matches("SEARCH c USING INDEX conversations_mode_updated (tenant_id=? AND mode=?")
            .count(),
        parts,
        "{plan}"
    );
    assert!(!plan.contains("INDEX conversations_updated"), "{plan}");
}

#[test]
fn whole_inbox_merges_the_inbox_of_each_mode() {
    let (conn, _dir) = database();
    let q = ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant);
    assert_merges_modes(&page_plan(&conn, &q), Mode::ALL.len());
    let next = ConversationQuery {
        cursor: Some(ConversationCursor {
            updated_at_ns: 5,
            id: ConversationId(Uuid::nil()),
        }),
        modes: vec![Mode::Queued, Mode::Agent, Mode::Queued],
        ..q
    };
    let p = page_plan(&conn, &next);
    assert_merges_modes(&p, 2);
    // The cursor is a bound of each part's range, not a filter of its rows.
    assert_eq!(
        p.matches("(tenant_id=? AND mode=? AND (updated_at,id)<(?,?))")
            .count(),
        2,
        "{p}"
    );
}

#[test]
fn the_tenants_inbox_index_is_gone_after_migration_twenty() {
    let (conn, _dir) = database();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'conversations_updated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

/// Every documented filter of the inbox (`ConversationQuery`), alone: the page's plan never
/// scans a table or reads the dropped index, and each is either the modes' inboxes merged
/// or one lookup by an index of its own.
#[test]
fn every_inbox_filter_merges_the_modes_or_starts_from_its_own_index() {
    use chat_core::{Channel, ContactId, Priority};
    let (conn, _dir) = database();
    let base = || ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant);
    let at = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let merged: Vec<(&str, ConversationQuery)> = vec![
        ("none", base()),
        (
            "modes",
            ConversationQuery {
                modes: vec![Mode::Queued, Mode::Bot],
                ..base()
            },
        ),
        (
            "priority",
            ConversationQuery {
                priority: Some(Priority::Urgent),
                ..base()
            },
        ),
        (
            "department",
            ConversationQuery {
                department: Some("billing".into()),
                ..base()
            },
        ),
        (
            "channel",
            ConversationQuery {
                channel: Some(Channel::Web),
                ..base()
            },
        ),
        (
            "pinned",
            ConversationQuery {
                pinned: Some(true),
                ..base()
            },
        ),
        (
            "snoozed",
            ConversationQuery {
                snoozed: Some(false),
                ..base()
            },
        ),
        (
            "updated_from",
            ConversationQuery {
                updated_from: Some(at),
                ..base()
            },
        ),
        (
            "updated_to",
            ConversationQuery {
                updated_to: Some(at),
                ..base()
            },
        ),
        (
            "agent scope",
            ConversationQuery::new(
                TenantId(Uuid::nil()),
                Scope::Agent {
                    agent: AgentId(Uuid::nil()),
                    departments: vec!["billing".into()],
                },
            ),
        ),
    ];
    for (name, q) in merged {
        let p = page_plan(&conn, &q);
        assert!(!p.contains("conversation_tags"), "{name}: {p}");
        assert_merges_modes(
            &p,
            if q.modes.is_empty() {
                Mode::ALL.len()
            } else {
                q.modes.len()
            },
        );
    }
    let own: Vec<(&str, ConversationQuery, &str)> = vec![
        (
            "one mode",
            ConversationQuery {
                modes: vec![Mode::Closed],
                ..base()
            },
            "conversations_mode_updated (tenant_id=? AND mode=?)",
        ),
        (
            "assigned agent",
            ConversationQuery {
                assigned: Some(AssignedFilter::Agent(AgentId(Uuid::nil()))),
                ..base()
            },
            "conversations_assigned",
        ),
        (
            "unassigned",
            ConversationQuery {
                assigned: Some(AssignedFilter::Unassigned),
                ..base()
            },
            "conversations_assigned",
        ),
        (
            "contact scope",
            ConversationQuery::new(
                TenantId(Uuid::nil()),
                Scope::Contact {
                    contact: ContactId(Uuid::nil()),
                    conversation: None,
                },
            ),
            "conversations_contact (contact_id=?)",
        ),
        (
            "contact e-mail",
            ConversationQuery {
                contact_email: Some("ann@example.com".into()),
                ..base()
            },
            "conversations_contact (contact_id=?)",
        ),
        (
            "a tag of few conversations",
            ConversationQuery {
                tag: Some("refund".into()),
                ..base()
            },
            "conversation_tags_tag (tag=?)",
        ),
    ];
    for (name, q, index) in own {
        let p = page_plan(&conn, &q);
        assert!(p.contains(index), "{name}: expected {index} in:\n{p}");
        assert!(!p.contains("MERGE"), "{name}: {p}");
        assert!(!p.contains("INDEX conversations_updated"), "{name}: {p}");
        for line in p.lines() {
            assert!(
                !line.starts_with("SCAN ") || line.contains("INDEX"),
                "{name}: scans a table:\n{p}"
            );
        }
    }
}

#[test]
fn assigned_agent_filter_uses_the_assignment_index() {
    let (conn, _dir) = database();
    let q = ConversationQuery {
        assigned: Some(AssignedFilter::Agent(AgentId(Uuid::nil()))),
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    let p = page_plan(&conn, &q);
    assert!(
        p.contains("conversations_assigned_updated (tenant_id=? AND assigned_agent_id=?)"),
        "{p}"
    );
    assert!(
        !p.lines()
            .any(|l| l.starts_with("SCAN c") && !l.contains("INDEX")),
        "{p}"
    );
}

#[test]
fn department_filter_walks_each_modes_inbox_without_sorting_the_department() {
    let (conn, _dir) = database();
    let q = ConversationQuery {
        department: Some("billing".into()),
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    let p = page_plan(&conn, &q);
    assert_merges_modes(&p, Mode::ALL.len());
    assert!(!p.contains("conversations_department"), "{p}");
}

#[test]
fn a_tag_walks_the_inbox_when_a_page_of_it_is_found_in_fewer_probes_than_it_has_rows() {
    let (conn, _dir) = database();
    // A tenant of 100 conversations (kept counts, as the triggers keep them).
    for (mode, n) in [("agent", 10), ("closed", 90)] {
        conn.execute(
            "INSERT INTO conversation_counts (tenant_id, facet, value, mode, n) VALUES (?1, '', '', ?2, ?3)",
            rusqlite::params![Uuid::nil().as_bytes().as_slice(), mode, n],
        )
        .unwrap();
    }
    let q = |modes: Vec<Mode>| ConversationQuery {
        tag: Some("refund".into()),
        modes,
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    let walks = |q: &ConversationQuery, counts: &[(Mode, u64)]| {
        list::tag_walks(&conn, q, &counts.iter().copied().collect()).unwrap()
    };
    // A page of 51: walked when tagged² > 51 × 100.
    assert!(!walks(&q(vec![]), &[(Mode::Closed, 71)]));
    assert!(walks(&q(vec![]), &[(Mode::Closed, 72)]));
    assert!(!walks(&q(vec![]), &[]));
    // Only the modes asked for, pages of 2: the agent inbox (10) with 5 tagged is walked
    // (25 > 20), with 4 not, whatever the closed ones.
    let agent = ConversationQuery {
        limit: 1,
        ..q(vec![Mode::Agent])
    };
    assert!(walks(&agent, &[(Mode::Closed, 1), (Mode::Agent, 5)]));
    assert!(!walks(&agent, &[(Mode::Closed, 90), (Mode::Agent, 4)]));
}

#[test]
fn a_rare_tag_is_looked_up_once_then_its_conversations_by_id() {
    let (conn, _dir) = database();
    for modes in [vec![], vec![Mode::Queued, Mode::Agent]] {
        let q = ConversationQuery {
            tag: Some("vip".into()),
            modes,
            ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
        };
        let p = page_plan(&conn, &q);
        let first = p.lines().next().unwrap_or_default();
        // The tag's entries drive: the planner without statistics walked the tenant along
        // another index and tested every conversation (6.7 ms a page at 10k conversations).
        assert!(
            first.starts_with("SEARCH t USING COVERING INDEX conversation_tags_tag (tag=?)"),
            "{p}"
        );
        assert_eq!(
            p.matches("conversation_tags").count(),
            1,
            "looked up once:\n{p}"
        );
        assert!(
            p.contains("SEARCH c USING INDEX sqlite_autoindex_conversations_1 (id=?)"),
            "{p}"
        );
        assert!(
            !p.contains("MERGE") && !p.contains("conversations_mode_updated"),
            "{p}"
        );
        // A tag on few of the tenant's conversations is sorted (`tag_walks`).
        assert!(p.contains("TEMP B-TREE FOR ORDER BY"), "{p}");
    }
}

#[test]
fn a_common_tag_walks_the_inbox_and_probes_each_conversations_tags() {
    let (conn, _dir) = database();
    let q = ConversationQuery {
        tag: Some("refund".into()),
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    let (sql, params) = list::common_tag_page_query(&q);
    let p = plan(&conn, &sql, &params);
    assert_merges_modes(&p, Mode::ALL.len());
    // One seek on the tags' primary key per conversation walked, never the tag's whole
    // set built first (which grew with the tag: 6 ms a page at 100k conversations).
    assert!(
        p.matches("USING PRIMARY KEY (conversation_id=? AND tag=?)")
            .count()
            == Mode::ALL.len(),
        "{p}"
    );
    assert!(!p.contains("LIST SUBQUERY"), "{p}");
}

#[test]
fn a_common_word_walks_the_inbox_in_index_order_and_each_mode_along_its_index() {
    let (conn, _dir) = database();
    for modes in [vec![], vec![Mode::Queued]] {
        let q = ConversationQuery {
            text: Some("parcel".into()),
            modes,
            ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
        };
        let [(page, page_params), (count, mut count_params)] = list::walk_queries(&q);
        let p = plan(&conn, &page, &page_params);
        assert!(p.contains("conversations_mode_updated"), "{p}");
        assert!(!p.contains("INDEX conversations_updated"), "{p}");
        // No sort: the walk stops after the page only if the index gives the order.
        assert!(!p.contains("TEMP B-TREE"), "{p}");
        // The bodies of one conversation along `messages_seq`, never a scan.
        assert!(p.contains("messages_seq"), "{p}");
        count_params.extend([Value::Text("queued".into()), Value::Integer(1000)]);
        let p = plan(&conn, &count, &count_params);
        assert!(p.contains("conversations_mode_updated"), "{p}");
        assert!(!p.contains("TEMP B-TREE"), "{p}");
        // A conversation without messages changed since the index is tested on its words:
        // its number by id, then one seek on its words starting with the word.
        for p in [plan(&conn, &page, &page_params), p] {
            assert!(
                p.contains("SEARCH cw USING PRIMARY KEY (conversation=? AND word>? AND word<?)"),
                "{p}"
            );
            assert!(p.contains("search_conversations"), "{p}");
            assert!(!p.contains("SCAN cw") && !p.contains("SCAN sc"), "{p}");
        }
    }
}

#[test]
fn text_search_looks_words_up_and_reads_only_messages_changed_since_the_index() {
    let (conn, _dir) = database();
    let q = ConversationQuery {
        text: Some("late refund".into()),
        ..ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant)
    };
    let (sql, params) = list::page_query(&q, WordIndex::Since { watermark: 0 });
    let p = plan(&conn, &sql, &params);
    // `M` is FTS5's MATCH constraint: the needle is looked up, not scanned for.
    assert!(p.contains("SCAN s VIRTUAL TABLE INDEX 0:M"), "{p}");
    // The events after the watermark are a range of rowids, not a scan of the log, and
    // their messages are found by id.
    assert!(
        p.contains("SEARCH e USING INTEGER PRIMARY KEY (rowid>?)"),
        "{p}"
    );
    assert!(p.contains("messages_id"), "{p}");
}

/// Runs `sql` three times with different values bound (a cached statement is bound again at
/// every run) and returns how often SQLite compiled it again.
fn reprepares(conn: &Connection, sql: &str, params: &[Value]) -> i32 {
    for run in 0..3i64 {
        let mut stmt = conn.prepare_cached(sql).unwrap();
        let bound: Vec<Value> = params
            .iter()
            .map(|v| match v {
                Value::Integer(n) => Value::Integer(n.saturating_sub(run)),
                other => other.clone(),
            })
            .collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(bound)).unwrap();
        while rows.next().unwrap().is_some() {}
    }
    conn.prepare_cached(sql)
        .unwrap()
        .get_status(rusqlite::StatementStatus::RePrepare)
}

#[test]
fn hot_reads_are_not_compiled_again_at_each_run() {
    let (conn, _dir) = database();
    let latest = [
        blob(),
        blob(),
        Value::Integer(i64::MAX),
        Value::Integer(1),
        Value::Integer(50),
    ];
    let events = [blob(), Value::Integer(0), Value::Integer(100)];
    let queue = [blob(), Value::Integer(10)];
    let (page, page_params) = list::page_query(
        &ConversationQuery::new(TenantId(Uuid::nil()), Scope::Tenant),
        WordIndex::Scan,
    );
    // Also once the planner has statistics (`ANALYZE`), with which it may plan by value.
    for analyzed in [false, true] {
        if analyzed {
            conn.execute_batch("ANALYZE").unwrap();
            conn.flush_prepared_statement_cache();
        }
        assert_eq!(reprepares(&conn, read::LATEST_MESSAGES, &latest), 0);
        assert_eq!(reprepares(&conn, read::EVENTS_SINCE, &events), 0);
        assert_eq!(reprepares(&conn, read::QUEUE, &queue), 0);
        assert_eq!(reprepares(&conn, &page, &page_params), 0);
    }
}

#[test]
fn message_hits_of_a_long_conversation_walk_the_index_backwards_within_its_range() {
    let (conn, _dir) = database();
    let params = [
        Value::Text("\"kettle\"*".into()),
        Value::Integer(1),
        Value::Integer(1000),
        blob(),
        blob(),
        Value::Integer(1),
        Value::Text("kettle".into()),
        Value::Integer(3),
    ];
    let p = plan(&conn, crate::hits::HITS_BY_INDEX, &params);
    // The index outermost, its rowids walked newest first within the range (`><`), each
    // entry's side row and message found by `pk`; no sort.
    assert!(
        p.lines()
            .next()
            .is_some_and(|first| first.starts_with("SCAN s VIRTUAL TABLE INDEX")
                && first.contains("M")
                && first.contains("><")),
        "{p}"
    );
    assert!(
        p.contains("SEARCH r USING INTEGER PRIMARY KEY (rowid=?)"),
        "{p}"
    );
    assert!(
        p.contains("SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"),
        "{p}"
    );
    assert!(!p.contains("TEMP B-TREE"), "{p}");
}
