//! Progress bars on the terminal while a run goes, hidden for scripts (`--json`, or no terminal).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `length` steps (a spinner without one), labelled, or a hidden one when `progress` is off.
pub(super) fn progress_bar(progress: bool, length: Option<u64>, label: String) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let bar = match length {
        Some(length) => ProgressBar::new(length),
        None => ProgressBar::new_spinner(),
    };
    let template = if length.is_some() {
        "{prefix:>28} [{bar:30}] {pos}/{len} {msg}"
    } else {
        "{prefix:>28} {spinner} {elapsed} {msg}"
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_prefix(label);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
