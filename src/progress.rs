//! Progress bars and messages for long work, and the Ctrl-C flag every long loop checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler: long loops then stop at their next check and clean up
/// their temporary files instead of dying mid-write.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: the user really wants out.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to quit at once)");
    });
}

/// Fails when the user pressed Ctrl-C; call it inside long loops.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted by the user");
    }
    Ok(())
}

/// Where progress goes: indicatif bars on stderr, or nowhere with `--quiet`.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            quiet,
        }
    }

    /// A silent reporter, for library callers and tests.
    pub fn hidden() -> Self {
        Self::new(true)
    }

    /// A bar counting `len` units of work.
    pub fn bar(&self, len: u64, what: &str, unit: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        let template =
            format!("{{msg:>12}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{eta}} left)");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar
    }

    /// A spinner for work of unknown length.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// A line of news for the user (hidden with `--quiet`).
    pub fn info(&self, line: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        // Above the bars on a terminal; plain lines when stderr is a file or a pipe (bars are hidden then).
        if self.multi.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}
