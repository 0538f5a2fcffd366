//! A tiny `sh` process that stops a server and deletes its directory once we let go of it, even when
//! this process dies without running any destructor.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Error;
use crate::command::describe;

/// Blocks on stdin until end of file, then runs its arguments as the stop command and removes the
/// directory. The kernel closes our end of the pipe when this process exits however it exits
/// (panic, `process::exit`, SIGKILL from a test runner's timeout), so end of file always comes.
/// Signals aimed at the test (Ctrl-C) must not kill the watchdog before it has done its job.
const SCRIPT: &str = r#"trap '' INT TERM HUP QUIT
while read -r _; do :; done
"$@" >/dev/null 2>&1
rm -rf -- "$TESTKIT_WATCHDOG_DIR"
"#;

/// Cleans up a server directory when dropped, or when this process ends.
#[derive(Debug)]
pub(crate) struct Watchdog {
    process: Child,
}

impl Watchdog {
    /// Starts watching: `stop` runs and then `dir` is removed when this value drops or the process
    /// exits. `stop` may fail harmlessly (e.g. the server is not running).
    pub(crate) fn arm(stop: &Command, dir: &Path) -> Result<Self, Error> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(SCRIPT)
            .arg("testkit-watchdog")
            .arg(stop.get_program())
            .args(stop.get_args())
            .env("TESTKIT_WATCHDOG_DIR", dir)
            .stdin(Stdio::piped())
            // Output handles held by a survivor would make test runners wait for it or report a leak.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test's process group, so a runner killing that group cannot kill the watchdog.
            .process_group(0);
        let process = command.spawn().map_err(|source| Error::Spawn { command: describe(&command), source })?;
        Ok(Self { process })
    }
}

impl Drop for Watchdog {
    /// Fires the watchdog and waits for it, so the server is gone when the owner's drop returns.
    fn drop(&mut self) {
        drop(self.process.stdin.take());
        if let Err(error) = self.process.wait() {
            eprintln!("testkit: waiting for the Postgres watchdog failed: {error}");
        }
    }
}
