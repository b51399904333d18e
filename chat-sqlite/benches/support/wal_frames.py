#!/usr/bin/env python3
"""Which b-trees a group of posted messages dirties: WAL frames per message, per b-tree.

Usage (on a database the growth bench built and kept, which this leaves untouched):

    BENCH_DIR=/tmp/growth BENCH_POSTS=0 BENCH_QUERIES=1 \
        cargo bench -p chat-sqlite --bench growth -- 10000x0 100000x1000000
    python3 chat-sqlite/benches/support/wal_frames.py /tmp/growth/growth-100000x1000000.db

It copies the database, then commits groups of 256 messages to random conversations with
the statements the store runs for each (src/write.rs: the message row, the conversation's
activity columns, the `message_created` event), automatic checkpoints off, and reads the
page number of every WAL frame the last four groups wrote; `dbstat` names each page's
b-tree. A frame is a page written to the log (and later copied into the database by a
checkpoint): the writer's cost per message grows with them. Optional third argument: SQL
run on the copy first (`;`-separated), to see what dropping or changing an index would
save. Python's own SQLite (any version with `dbstat`) is enough: the b-tree layout is the
file format's.
"""
import collections
import os
import random
import shutil
import sqlite3
import struct
import sys
import time

GROUP = 256
MEASURED = 4


def main():
    src = sys.argv[1]
    groups = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    setup = sys.argv[3] if len(sys.argv) > 3 else ""
    db = src + ".frames"
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    shutil.copy(src, db)
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA wal_autocheckpoint = 0")
    c.execute("PRAGMA cache_size = -8192")  # the writer's (Options::writer_cache_kib)
    for statement in filter(None, (s.strip() for s in setup.split(";"))):
        c.execute(statement)
    tenant = c.execute("SELECT id FROM tenants").fetchone()[0]
    conversations = [r[0] for r in c.execute("SELECT id FROM conversations ORDER BY rowid")]
    last_seq = dict(c.execute("SELECT id, last_seq FROM conversations"))
    (event_seq,) = c.execute(
        "SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?", (tenant,)
    ).fetchone()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rnd = random.Random(7)
    text = "please check the parcel tracking status because the delivery is late " * 3
    start = None
    for g in range(groups):
        if g == groups - MEASURED:
            start = os.path.getsize(db + "-wal")
        c.execute("BEGIN IMMEDIATE")
        for _ in range(GROUP):
            conversation = conversations[rnd.randrange(len(conversations))]
            last_seq[conversation] += 1
            event_seq += 1
            now = time.time_ns()
            body = text[: 100 + rnd.randrange(100)]
            # A UUID v7: the time first, so new ids go to the right edge of `messages_id`.
            message_id = (now // 1_000_000).to_bytes(6, "big") + os.urandom(10)
            c.execute(
                "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, "
                "created_at) VALUES (?, ?, ?, ?, 'customer', 'text', ?, ?)",
                (message_id, tenant, conversation, last_seq[conversation], body, now),
            )
            (pk,) = c.execute("SELECT pk FROM messages WHERE id = ?", (message_id,)).fetchone()
            c.execute(
                "UPDATE conversations SET updated_at = ?2, last_seq = ?3, version = version + 1, "
                "message_count = message_count + 1, unread_for_agent = unread_for_agent + 1, "
                "last_message_at = ?2, last_customer_message_at = ?2, preview_sender = 'customer', "
                "preview_body = ?4, preview_at = ?2, preview_metadata = NULL WHERE id = ?1",
                (conversation, now, last_seq[conversation], body[:140]),
            )
            c.execute(
                "INSERT INTO events (tenant_id, seq, conversation_id, data, message_pk) "
                "VALUES (?, ?, NULL, '{}', ?)",
                (tenant, event_seq, pk),
            )
        c.execute("COMMIT")
    with open(db + "-wal", "rb") as f:
        f.seek(start)
        log = f.read()
    frame = 24 + 4096
    pages = [struct.unpack(">I", log[i : i + 4])[0] for i in range(0, len(log) - frame + 1, frame)]
    names = dict(c.execute("SELECT pageno, name FROM dbstat"))
    c.close()
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    messages = MEASURED * GROUP
    print(f"{src}: {len(pages) / messages:.2f} WAL frames per message "
          f"({MEASURED} groups of {GROUP})")
    for name, n in collections.Counter(names.get(p, "(new page)") for p in pages).most_common():
        print(f"  {name:40s} {n / messages:.3f}")


if __name__ == "__main__":
    main()
