//! The monitoring tools from Debian's `prometheus` and `prometheus-alertmanager` packages, found on
//! `PATH`, and running them to completion.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::AlertingError;

/// `amtool`, from `prometheus-alertmanager`.
pub const AMTOOL: (&str, &str) = ("amtool", "prometheus-alertmanager");
/// The Alertmanager server as Debian names it, from `prometheus-alertmanager`.
pub const ALERTMANAGER: (&str, &str) = ("prometheus-alertmanager", "prometheus-alertmanager");

/// Where `tool` is on `PATH`; a missing tool is an error naming the `package` that installs it.
pub fn find((tool, package): (&'static str, &'static str)) -> Result<PathBuf, AlertingError> {
    testkit::workspace::on_path(tool).ok_or(AlertingError::ToolMissing { tool, package })
}

/// What a finished tool run printed.
#[derive(Debug)]
pub struct ToolOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output, lossily decoded as UTF-8.
    pub stdout: String,
    /// Its standard error, lossily decoded as UTF-8.
    pub stderr: String,
    /// `program args…`, for messages.
    pub command: String,
    status: std::process::ExitStatus,
}

impl ToolOutput {
    /// Both streams, for failure messages.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout.trim_end(), self.stderr.trim_end()).trim().to_owned()
    }

    /// `Ok(self)` when the tool exited 0, otherwise an error carrying everything it printed.
    pub fn checked(self) -> Result<Self, AlertingError> {
        if self.success {
            Ok(self)
        } else {
            Err(AlertingError::CommandFailed { output: self.combined(), command: self.command, status: self.status })
        }
    }
}

/// Runs `tool` with `args` (stdin closed) and returns what it printed, whatever its exit status.
pub fn run<I, S>(tool: (&'static str, &'static str), args: I) -> Result<ToolOutput, AlertingError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(find(tool)?);
    command.args(args).stdin(std::process::Stdio::null());
    let description = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command.output().map_err(AlertingError::io(format!("running `{description}`")))?;
    Ok(ToolOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        command: description,
        status: output.status,
    })
}

/// `amtool check-config FILE`.
pub fn amtool_check_config(config: &Path) -> Result<ToolOutput, AlertingError> {
    run(AMTOOL, [OsStr::new("check-config"), config.as_os_str()])
}

/// The receivers `amtool config routes test` resolves for an alert with `labels` (`name=value` each), in
/// the order Alertmanager would notify them.
pub fn amtool_routes(config: &Path, labels: &[&str]) -> Result<Vec<String>, AlertingError> {
    let output = run(AMTOOL, routes_test_args(config, None, labels))?.checked()?;
    let first = output.stdout.lines().next().unwrap_or_default();
    Ok(first.split(',').map(|receiver| receiver.trim().to_owned()).filter(|r| !r.is_empty()).collect())
}

/// `amtool config routes test --verify.receivers=EXPECTED LABELS…`: fails (with amtool's output) unless
/// an alert with `labels` goes to exactly `expected`, in that order.
pub fn amtool_verify_route(config: &Path, labels: &[&str], expected: &[&str]) -> Result<ToolOutput, AlertingError> {
    run(AMTOOL, routes_test_args(config, Some(&expected.join(",")), labels))?.checked()
}

fn routes_test_args(config: &Path, verify: Option<&str>, labels: &[&str]) -> Vec<String> {
    let mut args = vec![
        "config".to_owned(),
        "routes".to_owned(),
        "test".to_owned(),
        format!("--config.file={}", config.display()),
    ];
    if let Some(receivers) = verify {
        args.push(format!("--verify.receivers={receivers}"));
    }
    args.extend(labels.iter().map(|label| (*label).to_owned()));
    args
}

/// `amtool template render` of `text` with the templates matching `glob`, over the alert data in
/// `data` (a JSON file shaped like Alertmanager's template data).
pub fn amtool_render(glob: &str, data: &Path, text: &str) -> Result<String, AlertingError> {
    let args = [
        "template".to_owned(),
        "render".to_owned(),
        format!("--template.glob={glob}"),
        format!("--template.data={}", data.display()),
        format!("--template.text={text}"),
    ];
    Ok(run(AMTOOL, args)?.checked()?.stdout)
}
