//! A batch on a Slurm cluster: one array task an entry, each running `benjamin batch FILE
//! --entry N` on the shared batch folder, where it records its state as a local run does;
//! `benjamin batch FILE --status` reads the states back and writes the report.

use std::process::Command;

use anyhow::{bail, Context, Result};

use super::Batch;
use crate::fsutil;

/// Writes `slurm/array.sh` in the batch folder and submits it with `sbatch --parsable`.
/// `hours` (the whole batch's budget) is shared equally among the entries, which run side by
/// side as the cluster allows. Returns the job id.
pub fn submit(batch: &Batch, hours: Option<f64>, retry_failed: bool) -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the benjamin binary to submit")?;
    let file = std::fs::canonicalize(&batch.file)
        .with_context(|| format!("cannot resolve {}", batch.file.display()))?;
    let dir = std::fs::canonicalize(&batch.dir)
        .with_context(|| format!("cannot resolve {}", batch.dir.display()))?;
    let n = batch.entries.len();
    let mut flags = String::new();
    let mut time = String::new();
    if let Some(h) = hours {
        let each = h / n as f64;
        flags += &format!(" --hours {each}");
        // Slurm's limit: the entry's share and its allowance to overrun (twice, plus 10 min).
        time = format!(
            "#SBATCH --time={}\n",
            (each * 60.0 * 2.0).ceil() as u64 + 10
        );
    }
    if retry_failed {
        flags += " --retry-failed";
    }
    let script = format!(
        "#!/bin/bash\n\
#SBATCH --job-name=benjamin-{name}\n\
#SBATCH --array=1-{n}\n\
#SBATCH --output={log}/entry-%a.log\n\
{time}\
# One festival entry a task; each records its state in {state}.\n\
exec {exe} --quiet batch {file} --entry \"$SLURM_ARRAY_TASK_ID\"{flags}\n",
        name = quote(&dir.file_name().unwrap_or_default().to_string_lossy()),
        log = quote(&dir.join("slurm").to_string_lossy()),
        state = dir.join("state").display(),
        exe = quote(&exe.to_string_lossy()),
        file = quote(&file.to_string_lossy()),
    );
    let path = dir.join("slurm").join("array.sh");
    fsutil::write_atomic(&path, script.as_bytes())?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .current_dir(&dir)
        .output()
        .context("cannot run sbatch: is Slurm installed here? (scripts/slurm_single_node.sh starts one on this machine)")?;
    if !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    fsutil::write_atomic(&dir.join("slurm").join("job"), id.as_bytes())?;
    Ok(id)
}

/// Single-quoted for the shell.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(super::quote("a b"), "'a b'");
        assert_eq!(super::quote("it's"), "'it'\\''s'");
    }
}
