//! Credentials for local runs (`cargo xtask up`, `cargo xtask bench`): random secrets, and development tokens
//! minted by the backend's own `backend token` command, so xtask holds no signing code of its own.

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// Bytes of entropy in a generated secret (the services require at least 32 bytes of key).
const SECRET_BYTES: usize = 32;

/// 32 random bytes, hex-encoded.
pub fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    let random = Path::new("/dev/urandom");
    std::fs::File::open(random)
        .and_then(|mut source| source.read_exact(&mut bytes))
        .with_context(|| format!("reading {}", random.display()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A token for `subject` from `backend token --sub SUBJECT`, run with `env` (which must hold the backend's
/// `AUTH_JWT_SECRET`, and its issuer and audience if it has them).
pub async fn mint_token<K, V>(
    backend: &Path,
    env: impl IntoIterator<Item = (K, V)>,
    subject: &str,
) -> anyhow::Result<String>
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let output = Command::new(backend)
        .args(["token", "--sub", subject])
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running `backend token`")?;
    if !output.status.success() {
        bail!(
            "`backend token --sub {subject}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let token = String::from_utf8(output.stdout).context("the token is not UTF-8")?;
    Ok(token.trim().to_owned())
}
