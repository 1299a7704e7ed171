//! The progress bar long CLI runs show on a terminal (hidden in JSON mode and when piped).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting tensors, drawn on stderr only when stderr is a terminal and `enabled`.
pub fn tensor_bar(tensor_count: usize, enabled: bool) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(tensor_count as u64);
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} tensors  {elapsed}  {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
