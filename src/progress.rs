//! Progress bars and messages for long work, and the Ctrl-C flag every long loop checks.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
        crate::errln!(
            "\ninterrupted: stopping after the current step (Ctrl-C again to quit at once)"
        );
    });
}

/// Prints a line of a command's output on stdout. When the reader has gone (`benjamin archive
/// list | head -1`) the process ends quietly, as any Unix tool does, instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::progress::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints a line on stderr; a closed stderr is ignored, so that `make 2>&1 | head -1` still
/// finishes the film.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The first few of a list and how many more: "a, b, c, d and 20862 more". A stage with a
/// file per line of dialogue must not print twenty thousand names on one line.
pub fn name_a_few<S: AsRef<str>>(items: &[S]) -> String {
    const SHOWN: usize = 4;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text += &format!(" and {} more", items.len() - SHOWN);
    }
    text
}

/// See [`outln!`].
pub fn write_stdout(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            crate::errln!("error: cannot write to stdout: {e}");
        }
        std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            1
        });
    }
}

/// Prints a command's summary as pretty JSON on stdout (`--json`).
pub fn print_json(value: &impl serde::Serialize) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("summary is serialisable")
    );
}

thread_local! {
    /// When the stage running on this thread has overrun its budget so far that it must
    /// stop, and why. Per thread, so that two films made side by side in one process (tests,
    /// a batch) never stop each other.
    static OVERRUN: RefCell<Option<(Instant, String)>> = const { RefCell::new(None) };
}

/// Whether the user pressed Ctrl-C (or sent SIGTERM or SIGHUP).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails when the user pressed Ctrl-C, or when the running stage is far past its deadline
/// (see [`OverrunGuard`]); call it inside long loops.
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted by the user");
    }
    OVERRUN.with_borrow(|overrun| match overrun {
        Some((limit, why)) if Instant::now() > *limit => bail!("{why}"),
        _ => Ok(()),
    })
}

/// While it lives, [`check_interrupted`] fails with `why` after `limit`: a stage given far
/// more work than its budget (a screenplay of hours) stops instead of running for hours.
pub struct OverrunGuard(());

impl OverrunGuard {
    pub fn new(limit: Instant, why: String) -> Self {
        OVERRUN.set(Some((limit, why)));
        OverrunGuard(())
    }
}

impl Drop for OverrunGuard {
    fn drop(&mut self) {
        OVERRUN.set(None);
    }
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
            crate::errln!("{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }

    pub fn is_quiet(&self) -> bool {
        self.quiet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overrun_stops_its_own_thread_only_and_ends_with_its_guard() {
        let guard = OverrunGuard::new(Instant::now() - Duration::from_secs(1), "too long".into());
        let err = check_interrupted().unwrap_err();
        assert_eq!(err.to_string(), "too long");
        std::thread::spawn(|| check_interrupted().unwrap())
            .join()
            .unwrap();
        drop(guard);
        check_interrupted().unwrap();
    }
}
