//! The app state of comparing the open model with a quantized file of it (File ▸ Compare
//! with…, or a second file dropped on the window): what is compared, the prompt a dropped file
//! raises, the table's sort order, and `AppState::handle_compare`, the part of the one state
//! handler that changes them.

use std::path::PathBuf;

use super::state::{AppState, Effect, OpenPath};

/// The comparison asked for: the open model (the original) against these files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompareRequest {
    /// The quantized model's files (one file, or the shards of one model).
    pub paths: Vec<PathBuf>,
    /// Distinguishes repeated comparisons with the same files (reloading).
    pub generation: u64,
}

/// The comparison table's columns one can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareColumn {
    /// The original model's order.
    File,
    /// Tensor name.
    Name,
    /// The quantized file's stored type.
    Type,
    /// True bits per weight.
    Bpw,
    /// MSE.
    Mse,
    /// Relative MSE.
    RelMse,
    /// SQNR in dB.
    Sqnr,
    /// Cosine similarity.
    Cosine,
    /// max |e|.
    MaxAbs,
    /// SQNR of the file's tensor minus that of the best candidate at the same bits per weight.
    VsBest,
}

/// How the comparison table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompareSort {
    /// The column.
    pub column: CompareColumn,
    /// Ascending (true) or descending.
    pub ascending: bool,
}

impl Default for CompareSort {
    fn default() -> Self {
        Self {
            column: CompareColumn::File,
            ascending: true,
        }
    }
}

/// Everything the app knows about the comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareState {
    /// The comparison in force, if any.
    pub request: Option<CompareRequest>,
    /// Files dropped while a model was open: the prompt "Compare X with the open model?".
    pub offer: Option<Vec<PathBuf>>,
    /// The table's order.
    pub sort: CompareSort,
    generation: u64,
}

/// What the user asked of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareCommand {
    /// Compare the open model (the original) with these files (the quantized model).
    Start(Vec<PathBuf>),
    /// Ask whether dropped files should be compared with the open model or opened instead.
    Offer(Vec<PathBuf>),
    /// Close the prompt without doing anything.
    DismissOffer,
    /// Stop comparing (the table closes; the views show the simulated quantization again).
    Close,
    /// Sort the table.
    SetSort(CompareSort),
    /// Show the native file dialog to pick the quantized file.
    Dialog,
    /// Show the path field for the quantized file (with a note when there is no dialog).
    ShowPath(Option<String>),
}

impl AppState {
    /// Performs one comparison command (called by [`AppState::handle`] only).
    pub(crate) fn handle_compare(&mut self, command: CompareCommand) {
        match command {
            CompareCommand::Start(paths) => {
                self.compare.offer = None;
                if self.model.is_none() {
                    self.errors
                        .push("open the original model first, then compare with…".into());
                    return;
                }
                self.compare.generation += 1;
                self.compare.request = Some(CompareRequest {
                    paths,
                    generation: self.compare.generation,
                });
            }
            CompareCommand::Offer(paths) => self.compare.offer = Some(paths),
            CompareCommand::DismissOffer => self.compare.offer = None,
            CompareCommand::Close => self.compare.request = None,
            CompareCommand::SetSort(sort) => self.compare.sort = sort,
            CompareCommand::Dialog => self.effects.push(Effect::CompareDialog),
            CompareCommand::ShowPath(note) => {
                let text = self.open_path.take().map(|o| o.text).unwrap_or_default();
                self.open_path = Some(OpenPath {
                    text,
                    note,
                    for_compare: true,
                });
            }
        }
    }

    /// Forgets the comparison (a new model was installed: the pairing belonged to the old one).
    pub(crate) fn forget_comparison(&mut self) {
        self.compare.request = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::settings::Settings;
    use crate::app::state::Command;

    #[test]
    fn a_comparison_needs_an_open_model_and_each_start_is_new() {
        let mut s = AppState::new(Settings::default());
        s.handle(Command::Compare(CompareCommand::Start(vec![
            "q.gguf".into(),
        ])));
        assert_eq!(s.compare.request, None);
        assert_eq!(s.errors.len(), 1);
        s.handle(Command::Compare(CompareCommand::Offer(vec![
            "q.gguf".into(),
        ])));
        assert!(s.compare.offer.is_some());
        s.handle(Command::Compare(CompareCommand::DismissOffer));
        assert_eq!(s.compare.offer, None);
        s.handle(Command::Compare(CompareCommand::ShowPath(None)));
        assert!(s.open_path.as_ref().is_some_and(|o| o.for_compare));
    }
}
