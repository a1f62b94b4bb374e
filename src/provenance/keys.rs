//! The key and certificate benjamin signs films with.
//!
//! They live in `$BENJAMIN_SIGNING` if set, else `<config>/benjamin/signing/` (`$XDG_CONFIG_HOME`
//! or `~/.config`): `cert.pem` (the signing certificate, then any intermediates), `key.pem` (its
//! PKCS#8 private key) and, when benjamin made them, `ca.pem` (the local authority that issued
//! the certificate). On first use benjamin makes a P-256 authority and certificate of its own.
//! A self-made certificate proves that a film is unaltered since this machine signed it, not
//! who the machine belongs to: others' validators do not trust it. To sign as yourself, put a
//! certificate a C2PA trust list knows (with the emailProtection extended key usage) and its
//! key there instead.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::fsutil;

pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
pub const CA_FILE: &str = "ca.pem";

/// A signing key with its certificate chain.
#[derive(Debug, Clone)]
pub struct SigningIdentity {
    pub dir: PathBuf,
    pub chain_pem: String,
    pub key_pem: String,
    /// The local authority's certificate, when benjamin made the identity itself.
    pub ca_pem: Option<String>,
}

impl SigningIdentity {
    /// Whether the certificate is one benjamin made (trusted by no one else).
    pub fn self_made(&self) -> bool {
        self.ca_pem.is_some()
    }
}

/// Where the signing key and certificate are kept.
pub fn signing_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BENJAMIN_SIGNING").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".config"),
            None => PathBuf::from(".benjamin-config"),
        },
    };
    config.join("benjamin").join("signing")
}

/// Reads the identity in `dir`, or makes one there on first use. Returns it and whether it
/// was made now.
pub fn load_or_make(dir: &Path) -> Result<(SigningIdentity, bool)> {
    // Two films cut at once in one process must not both make a key.
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join(CERT_FILE).is_file() || dir.join(KEY_FILE).is_file() {
        return Ok((load(dir)?, false));
    }
    let made = make()?;
    // Written into a fresh folder beside it and renamed into place, so another process making
    // one at the same moment, or a kill, never leaves half an identity.
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create folder {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".signing-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    write_private(&staging.path().join(KEY_FILE), &made.key_pem)?;
    fsutil::write_atomic(&staging.path().join(CERT_FILE), made.chain_pem.as_bytes())?;
    if let Some(ca) = &made.ca_pem {
        fsutil::write_atomic(&staging.path().join(CA_FILE), ca.as_bytes())?;
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, dir).is_err() {
        // Someone else put one there first: theirs stands.
        let _ = std::fs::remove_dir_all(&staged);
        return Ok((load(dir)?, false));
    }
    Ok((load(dir)?, true))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the identity kept in `dir`.
pub fn load(dir: &Path) -> Result<SigningIdentity> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: the signing identity needs {CERT_FILE} and {KEY_FILE} (remove the folder and benjamin makes a new one)",
                path.display()
            )
        })
    };
    let chain_pem = read(CERT_FILE)?;
    let key_pem = read(KEY_FILE)?;
    if !key_pem.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(anyhow!(
            "{} must hold a PKCS#8 private key (-----BEGIN PRIVATE KEY-----); convert one with `openssl pkcs8 -topk8 -nocrypt`",
            dir.join(KEY_FILE).display()
        ));
    }
    let ca_pem = std::fs::read_to_string(dir.join(CA_FILE)).ok();
    Ok(SigningIdentity {
        dir: dir.to_path_buf(),
        chain_pem,
        key_pem,
        ca_pem,
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    // C2PA validators want an organisation in the signer's name.
    dn.push(DnType::OrganizationName, "benjamin (self-made, untrusted)");
    dn.push(DnType::CommonName, common);
    dn
}

/// A local authority and a signing certificate it issued, as C2PA requires of a signer: not an
/// authority itself, digitalSignature, emailProtection, an authority key identifier. Both last
/// a century: without a time-stamp server, validity is checked when a film is verified.
fn make() -> Result<SigningIdentity> {
    let user = std::env::var("USER").unwrap_or_else(|_| "a benjamin user".into());
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!("benjamin authority of {user}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = date_time_ymd(2025, 1, 1);
    ca.not_after = date_time_ymd(2125, 1, 1);
    let ca = CertifiedIssuer::self_signed(ca, ca_key)?;

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = name(&format!("benjamin films of {user}"));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = date_time_ymd(2025, 1, 1);
    leaf.not_after = date_time_ymd(2125, 1, 1);
    let leaf = leaf.signed_by(&key, &ca)?;
    Ok(SigningIdentity {
        dir: PathBuf::new(),
        chain_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: Some(ca.pem()),
    })
}
