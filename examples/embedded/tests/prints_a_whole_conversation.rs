//! The starter must keep working: run it and check the story it tells.

use std::process::Command;

#[test]
fn the_starter_plays_a_whole_support_conversation() {
    let out = Command::new(env!("CARGO_BIN_EXE_example-embedded"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "bot: Hi! I am the Acme bot.",
        "bot: We are open Monday to Friday",
        "system: Assigned to Ann",
        "-- mode: agent, assigned to Ann: true",
        "agent: Hi Jo, Ann here.",
        "-- mode: closed, rating: 5/5",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}
