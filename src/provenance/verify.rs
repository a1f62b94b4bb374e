//! Reading a film's Content Credentials back and checking them.

use std::fs::File;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::{keys, Provenance, ASSERTION};

/// How a film's credentials stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Signed, unaltered, and by this machine's own benjamin key.
    Trusted,
    /// Signed and unaltered, by a certificate this machine does not trust (another user's
    /// self-made one, say).
    Untrusted,
    /// Signed, but the file or the manifest changed after signing, or the signature fails.
    Invalid,
    /// No Content Credentials at all (never signed, or stripped).
    Missing,
}

impl Verdict {
    /// Whether the film is as it was signed.
    pub fn is_intact(self) -> bool {
        matches!(self, Verdict::Trusted | Verdict::Untrusted)
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub verdict: Verdict,
    /// The C2PA failure codes (`assertion.bmffHash.mismatch`, ...), trust aside.
    pub failures: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_generator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digital_source_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

impl Verification {
    /// One sentence on what is wrong, for an intact film none.
    pub fn problem(&self, file: &Path) -> Option<String> {
        let file = file.display();
        match self.verdict {
            Verdict::Trusted | Verdict::Untrusted => None,
            Verdict::Missing => Some(format!(
                "{file} has no Content Credentials (no C2PA manifest): it was not signed, or the manifest was stripped"
            )),
            Verdict::Invalid => {
                let altered = self.failures.iter().any(|c| c.contains("Hash.mismatch"));
                Some(if altered {
                    format!(
                        "{file} was altered after it was signed: its data no longer matches the signed hash ({})",
                        self.failures.join(", ")
                    )
                } else {
                    format!(
                        "{file}: its Content Credentials do not validate ({})",
                        self.failures.join(", ")
                    )
                })
            }
        }
    }
}

/// Reads and validates the Content Credentials of an MP4. A film signed with this machine's
/// own key is trusted; any other valid signature is reported as untrusted.
pub fn verify(path: &Path) -> Result<Verification> {
    let mut context = c2pa::Context::new();
    if let Ok(ours) = keys::load(&keys::signing_dir()) {
        if let Some(ca) = ours.ca_pem {
            let trust = serde_json::json!({"trust": {"user_anchors": ca}});
            context = context
                .with_settings(trust)
                .context("cannot read this machine's signing authority")?;
        }
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = match c2pa::Reader::from_context(context).with_stream("video/mp4", file) {
        Ok(r) => r,
        Err(c2pa::Error::JumbfNotFound) => return Ok(missing()),
        Err(c2pa::Error::UnsupportedType) => {
            anyhow::bail!(
                "{} is not an MP4 file: benjamin verifies the films it cuts",
                path.display()
            )
        }
        Err(e) if !looks_like_mp4(path) => {
            anyhow::bail!(
                "{} is not an MP4 file ({e}): benjamin verifies the films it cuts",
                path.display()
            )
        }
        Err(e) => {
            return Ok(Verification {
                verdict: Verdict::Invalid,
                failures: vec![format!("the manifest cannot be read: {e}")],
                ..missing()
            })
        }
    };
    let failures: Vec<String> = reader
        .validation_status()
        .unwrap_or(&[])
        .iter()
        .map(|s| s.code().to_string())
        .filter(|c| c != c2pa::validation_status::SIGNING_CREDENTIAL_UNTRUSTED)
        .collect();
    let verdict = match reader.validation_state() {
        c2pa::ValidationState::Trusted => Verdict::Trusted,
        c2pa::ValidationState::Valid => Verdict::Untrusted,
        c2pa::ValidationState::Invalid => Verdict::Invalid,
    };
    let manifest = reader.active_manifest();
    let signature = manifest.and_then(|m| m.signature_info());
    let actions: Option<serde_json::Value> =
        manifest.and_then(|m| m.find_assertion("c2pa.actions.v2").ok());
    let source_type = actions.as_ref().and_then(|a| {
        a["actions"].as_array()?.iter().find_map(|x| {
            (x["action"] == "c2pa.created")
                .then(|| x["digitalSourceType"].as_str().map(String::from))?
        })
    });
    Ok(Verification {
        verdict,
        failures,
        claim_generator: manifest.and_then(|m| m.claim_generator()).map(String::from),
        signer: signature.and_then(|s| s.common_name.clone()),
        issuer: signature.and_then(|s| s.issuer.clone()),
        signed_at: signature.and_then(|s| s.time.clone()),
        digital_source_type: source_type,
        provenance: manifest.and_then(|m| m.find_assertion(ASSERTION).ok()),
    })
}

fn missing() -> Verification {
    Verification {
        verdict: Verdict::Missing,
        failures: Vec::new(),
        claim_generator: None,
        signer: None,
        issuer: None,
        signed_at: None,
        digital_source_type: None,
        provenance: None,
    }
}

/// Whether the file starts as an MP4 does (an `ftyp` box first).
fn looks_like_mp4(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head[4..8] == b"ftyp")
}
