//! `benjamin verify FILE.mp4`: who made a film, with what, from which sources and consents,
//! and whether it is as it was signed.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use super::verify::{verify, Verdict, Verification};
use crate::progress::print_json;

#[derive(Args)]
pub struct VerifyArgs {
    /// The film (an MP4 benjamin made).
    pub file: PathBuf,
}

/// Prints what the film's Content Credentials say; fails on a film that has none, was altered
/// after signing, or whose signature fails.
pub fn run(args: VerifyArgs, json: bool) -> Result<()> {
    let found = verify(&args.file)?;
    if json {
        print_json(&found);
    } else if found.verdict.is_intact() {
        print_report(&found);
    }
    match found.problem(&args.file) {
        Some(problem) => bail!(problem),
        None => Ok(()),
    }
}

fn print_report(v: &Verification) {
    let trust = match v.verdict {
        Verdict::Trusted => "signed with this machine's own benjamin key (self-made: validators elsewhere do not trust it)",
        _ => "a valid signature by a certificate this machine does not trust (another user's self-made key, say)",
    };
    crate::outln!(
        "Content Credentials: valid, unaltered since signing\n  signed by: {} ({}){}\n  trust: {trust}",
        v.signer.as_deref().unwrap_or("unnamed signer"),
        v.issuer.as_deref().unwrap_or("unknown issuer"),
        v.signed_at
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default()
    );
    if let Some(t) = &v.digital_source_type {
        let kind = t.rsplit('/').next().unwrap_or(t);
        crate::outln!("  made as: {kind} (AI-generated)");
    }
    let Some(p) = &v.provenance else {
        crate::outln!("  (no benjamin record in the manifest)");
        return;
    };
    let seed = p.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
    let budget = p
        .budget_hours
        .map(|h| format!(", {h} h budget"))
        .unwrap_or_default();
    crate::outln!("  made by: {}", p.made_by);
    crate::outln!("  film: {:?} ({}{seed}{budget})", p.title, p.genre);
    for m in &p.models {
        crate::outln!("  model: {} {}", m.name, &m.hash[..m.hash.len().min(16)]);
    }
    crate::outln!("  sources: {}", p.sources.len());
    for s in &p.sources {
        crate::outln!("    {}  {}  {}", s.file, s.licence, s.attribution);
    }
    if p.actors.is_empty() {
        crate::outln!("  faces swapped: none");
    }
    for a in &p.actors {
        let hash = &a.consent_hash[..a.consent_hash.len().min(16)];
        crate::outln!("  face of actor {}: consent record {hash}", a.actor);
    }
}
