//! The typed error every tensor loader returns; messages name the file and the problem.

use std::path::PathBuf;

/// Why a model file could not be opened or a tensor could not be decoded.
///
/// Every variant that concerns a file carries its path (for in-memory models, the model
/// name) and displays it first, so a message reads like
/// `model.safetensors: tensor 'x' offsets [10, 20) overlap 'y'`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The operating system refused to open, read or map the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file ends before a structure that must be there.
    #[error("{}: file is truncated: {what}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read when the end came.
        what: String,
    },
    /// The safetensors header length is over 100,000,000 bytes.
    #[error("{}: header length {len} is over the 100,000,000-byte limit", path.display())]
    HeaderTooLarge {
        /// The file.
        path: PathBuf,
        /// The declared header length.
        len: u64,
    },
    /// The header length runs past the end of the file.
    #[error("{}: header length {len} runs past the end of the file ({file_len} bytes)", path.display())]
    HeaderPastEnd {
        /// The file.
        path: PathBuf,
        /// The declared header length.
        len: u64,
        /// The file length.
        file_len: u64,
    },
    /// The header holds bytes that are not UTF-8 (so a tensor name is not UTF-8).
    #[error("{}: header is not valid UTF-8 (byte {offset}): {what}", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad sequence within the header or string.
        offset: usize,
        /// Which text was bad.
        what: String,
    },
    /// The header is not valid JSON or not the expected JSON shape.
    #[error("{}: bad header JSON: {message}", path.display())]
    BadJson {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Two tensors claim overlapping byte ranges.
    #[error("{}: tensor '{tensor}' offsets [{begin}, {end}) overlap '{other}'", path.display())]
    Overlap {
        /// The file.
        path: PathBuf,
        /// The later tensor.
        tensor: String,
        /// Its first byte (relative to the data section).
        begin: u64,
        /// One past its last byte.
        end: u64,
        /// The tensor it overlaps.
        other: String,
    },
    /// The tensors leave bytes of the data section unused.
    #[error("{}: gap in the data section: bytes [{begin}, {end}) belong to no tensor", path.display())]
    Gap {
        /// The file.
        path: PathBuf,
        /// First unused byte (relative to the data section).
        begin: u64,
        /// One past the last unused byte.
        end: u64,
    },
    /// A tensor's byte range runs past the end of the data or has end before begin.
    #[error(
        "{}: tensor '{tensor}' offsets [{begin}, {end}) fall outside the data section of {data_len} bytes",
        path.display()
    )]
    OutOfBounds {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Declared first byte.
        begin: u64,
        /// Declared end.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// A dtype name or type code this program does not know.
    #[error("{}: tensor '{tensor}' has unknown dtype {dtype}", path.display())]
    UnknownDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The dtype as written in the file.
        dtype: String,
    },
    /// The byte size does not match shape times element size.
    #[error(
        "{}: tensor '{tensor}' has {actual} bytes but its dtype and shape {shape:?} need {expected}",
        path.display()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The declared shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// Any other violation of the file format.
    #[error("{}: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two files of one model hold tensors with the same name.
    #[error("tensor '{name}' appears in both {} and {}", first.display(), second.display())]
    DuplicateName {
        /// The tensor name.
        name: String,
        /// The file that holds it first.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
    /// The file is not a format this program reads.
    #[error("{}: not a safetensors, GGUF, .npy or .npz file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file is valid but uses a feature this program does not decode.
    #[error("{}: {message}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        message: String,
    },
    /// A tensor index past the end of the tensor list.
    #[error("tensor index {index} out of range (model has {count} tensors)")]
    NoSuchTensor {
        /// The requested index.
        index: usize,
        /// The number of tensors.
        count: usize,
    },
    /// An element index past the end of a tensor.
    #[error("element {flat} out of range for tensor '{tensor}' ({numel} elements)")]
    NoSuchElement {
        /// The tensor.
        tensor: String,
        /// The requested flat index.
        flat: u64,
        /// The number of elements.
        numel: u64,
    },
    /// The tensor does not fit in this machine's address space or memory.
    #[error("tensor '{tensor}' with {numel} elements is too large to decode here")]
    TooLarge {
        /// The tensor.
        tensor: String,
        /// Its element count.
        numel: u64,
    },
    /// The caller cancelled the decode.
    #[error("cancelled")]
    Cancelled,
}

impl From<crate::cancel::Cancelled> for LoadError {
    fn from(_: crate::cancel::Cancelled) -> Self {
        LoadError::Cancelled
    }
}
