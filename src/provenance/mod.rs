//! What made a film, said in the film: a C2PA manifest (Content Credentials) signed into
//! film.mp4, and the same record as film.provenance.json beside it for people and tools
//! without C2PA.
//!
//! The manifest holds the `c2pa.created` action with the digital source type
//! `trainedAlgorithmicMedia` and benjamin as the software agent, and one assertion of benjamin's
//! own, `org.benjamin.provenance`: the film's title, genre, seed and budget, every footage
//! source with its licence, attribution and hash, the models with their hashes, and for each
//! swapped face the actor and the hash of the consent record in force (not its text). It is
//! signed with the user's key ([`keys`]), made on first use. `benjamin verify` reads it back
//! ([`verify`]).

pub mod cli;
pub mod keys;
pub mod verify;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::edl::EditList;
use crate::film::Genre;
use crate::fsutil;

/// The label of benjamin's own assertion in the manifest.
pub const ASSERTION: &str = "org.benjamin.provenance";
/// IPTC's digital source type for media made by a trained model.
pub const TRAINED_ALGORITHMIC_MEDIA: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";

/// What made a film.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// "benjamin <version>".
    pub made_by: String,
    /// Always true: every picture and sound of the film was chosen or made by models.
    pub ai_generated: bool,
    pub title: String,
    pub genre: Genre,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_hours: Option<f64>,
    /// The footage, each source once, in order of first use.
    pub sources: Vec<SourceCredit>,
    #[serde(default)]
    pub models: Vec<ModelCredit>,
    /// The actors whose faces were swapped in, with the consent each gave.
    #[serde(default)]
    pub actors: Vec<ActorConsent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceCredit {
    /// The file's path inside the film folder, or its name for footage outside it.
    pub file: String,
    pub licence: String,
    pub attribution: String,
    /// BLAKE3 of the file.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCredit {
    pub name: String,
    /// BLAKE3 of the weights.
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorConsent {
    pub actor: String,
    /// BLAKE3 of the consent record the faces stage checked.
    pub consent_hash: String,
}

impl Provenance {
    /// The record of a film cut from `edl`: its sources (paths inside `film_dir` are given
    /// relative to it); models and actors are added by whoever knows them.
    pub fn for_edit_list(edl: &EditList, film_dir: Option<&Path>) -> Result<Provenance> {
        let mut seen = BTreeSet::new();
        let mut sources = Vec::new();
        for shot in &edl.shots {
            if !seen.insert(shot.source.clone()) {
                continue;
            }
            let inside = film_dir.and_then(|d| shot.source.strip_prefix(d).ok());
            let file = match inside {
                Some(rel) => rel.to_string_lossy().into_owned(),
                None => shot
                    .source
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            sources.push(SourceCredit {
                file,
                licence: shot.licence.clone(),
                attribution: shot.attribution.clone(),
                hash: fsutil::hash_file(&shot.source)?,
            });
        }
        Ok(Provenance {
            made_by: format!("benjamin {}", env!("CARGO_PKG_VERSION")),
            ai_generated: true,
            title: edl.title.clone(),
            genre: edl.genre,
            seed: None,
            budget_hours: None,
            sources,
            models: Vec::new(),
            actors: Vec::new(),
        })
    }

    /// The ordinary MP4 tags of a film with this record.
    pub fn mp4_tags(&self) -> Vec<(&'static str, String)> {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        vec![
            ("title", self.title.clone()),
            ("comment", format!("made by {}, AI-generated", self.made_by)),
            ("creation_time", now.to_string()),
        ]
    }
}

/// Where the record goes beside a film: `film.provenance.json` for `film.mp4`.
pub fn record_path(film: &Path) -> PathBuf {
    film.with_extension("provenance.json")
}

/// What signing said about the signer.
#[derive(Debug, Clone, Serialize)]
pub struct Signed {
    pub signing_dir: PathBuf,
    /// The certificate was made by benjamin on this machine (no one else trusts it).
    pub self_made: bool,
    /// The identity was made just now, on first use.
    pub new_identity: bool,
    /// Time the signing took, and what the manifest added to the file.
    pub seconds: f64,
    pub bytes_added: i64,
}

/// Signs `unsigned` (an MP4) into `signed` (another path) with a manifest holding `record`,
/// with the user's key, made on first use.
pub fn sign_mp4(unsigned: &Path, signed: &Path, record: &Provenance) -> Result<Signed> {
    let started = std::time::Instant::now();
    let dir = keys::signing_dir();
    let (identity, new_identity) = keys::load_or_make(&dir)?;
    let signer = c2pa::create_signer::from_keys(
        identity.chain_pem.as_bytes(),
        identity.key_pem.as_bytes(),
        c2pa::SigningAlg::Es256,
        None,
    )
    .with_context(|| {
        format!(
            "cannot sign with the key and certificate in {} (an ES256 key and its certificate)",
            dir.display()
        )
    })?;
    let agent = serde_json::json!({"name": "benjamin", "version": env!("CARGO_PKG_VERSION")});
    let definition = serde_json::json!({
        "claim_generator_info": [agent],
        "title": record.title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": agent,
            }]}},
            {"label": ASSERTION, "data": record},
        ],
    });
    let mut builder = c2pa::Builder::from_context(c2pa::Context::new())
        .with_definition(definition)
        .context("cannot build the Content Credentials")?;
    let mut source =
        File::open(unsigned).with_context(|| format!("cannot open {}", unsigned.display()))?;
    let mut dest = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(signed)
        .with_context(|| format!("cannot create {}", signed.display()))?;
    builder
        .sign(&*signer, "video/mp4", &mut source, &mut dest)
        .with_context(|| format!("cannot sign {}", unsigned.display()))?;
    dest.sync_all()
        .with_context(|| format!("cannot flush {}", signed.display()))?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as i64).unwrap_or(0);
    Ok(Signed {
        signing_dir: dir,
        self_made: identity.self_made(),
        new_identity,
        seconds: started.elapsed().as_secs_f64(),
        bytes_added: size(signed) - size(unsigned),
    })
}
