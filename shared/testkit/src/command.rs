//! Running helper programs (initdb, pg_ctl, cp) and turning their failures into errors with context.

use std::process::Stdio;

use tokio::process::Command;

use crate::Error;

/// Runs `command` to completion and returns its stdout.
///
/// A non-zero exit becomes [`Error::CommandFailed`] carrying everything the program printed, because
/// that output is the only useful clue when, say, `initdb` fails on a fresh machine.
pub(crate) async fn run_checked(command: &mut Command) -> Result<String, Error> {
    let description = describe(command.as_std());
    let output = command
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn { command: description.clone(), source })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(Error::CommandFailed {
        command: description,
        status: output.status,
        output: format!("{}\n{}", stderr.trim_end(), stdout.trim_end()).trim().to_owned(),
    })
}

/// `program arg1 arg2 …` as a human would type it (without quoting), for error messages.
pub(crate) fn describe(command: &std::process::Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}
