//! `oms-cli keys generate`: a new random API token and its config snippet.

use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_core::config::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prints a fresh token once (stderr says so) and the `[[auth.keys]]`
/// entry holding only its SHA-256 digest.
pub(crate) fn generate(name: &str, roles: &[Role]) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 64,
        "--name must be 1-64 characters"
    );
    anyhow::ensure!(
        !roles.is_empty(),
        "--roles needs at least one of read, write, admin"
    );
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let token = format!("oms_{}", URL_SAFE_NO_PAD.encode(secret));
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let roles = roles
        .iter()
        .map(|r| {
            format!(
                "\"{}\"",
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!("Token (shown once; give it to the client, store it nowhere else):");
    println!("{token}");
    eprintln!();
    eprintln!("Add to oms.toml:");
    println!();
    println!("[[auth.keys]]\nname = \"{name}\"\nsha256 = \"{digest}\"\nroles = [{roles}]");
    Ok(ExitCode::SUCCESS)
}
