//! This test binary run again as a child process, to test two processes on one database
//! or a process killed mid-write.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Instant;

/// The child: this binary running the one test `test`, with `env` set (the test does
/// nothing without it). Its stdout is read line by line on a thread; dropping it kills it,
/// so that a failing parent leaves no process behind.
pub struct Child {
    process: std::process::Child,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl Child {
    pub fn spawn(test: &str, env: &str, db: &Path) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(env, db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        let stdout = process.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            process,
            lines,
            reader: Some(reader),
        }
    }

    /// Waits until the child prints a line ending with `word` (the test harness prints
    /// the test's name on the same line), by `deadline`.
    pub fn expect_line(&self, word: &str, deadline: Instant) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the child did not say {word:?}"));
            if line.ends_with(word) {
                return;
            }
        }
    }

    /// SIGKILL, wherever the child is.
    pub fn kill(mut self) {
        self.process.kill().expect("SIGKILL the child");
    }

    /// Waits for the child to exit.
    pub fn wait(&mut self) -> ExitStatus {
        self.process.wait().unwrap()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
