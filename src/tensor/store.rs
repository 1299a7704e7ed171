//! Where tensor bytes live (read-only memory maps or owned buffers) and what a loader hands back.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::decode::Layout;
use super::dtype::DType;
use super::error::LoadError;

/// A byte buffer holding tensor data.
#[derive(Debug)]
pub(crate) enum Store {
    /// A read-only memory map of a whole file.
    Mapped(Mmap),
    /// Bytes in memory (in-memory models, deflated .npz members).
    Owned(Vec<u8>),
}

impl Store {
    /// All bytes of the store.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Store::Mapped(map) => map,
            Store::Owned(bytes) => bytes,
        }
    }
}

/// One tensor as a loader found it: its metadata and where its bytes are.
#[derive(Debug, Clone)]
pub(crate) struct LoadedTensor {
    /// The tensor name.
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Index into the loader's stores.
    pub store: usize,
    /// First byte within the store.
    pub offset: usize,
    /// Number of bytes.
    pub len: usize,
    /// Byte order and memory order.
    pub layout: Layout,
}

/// What a loader returns for one file.
#[derive(Debug)]
pub(crate) struct Part {
    /// Tensors in file order.
    pub tensors: Vec<LoadedTensor>,
    /// The buffers the tensors point into.
    pub stores: Vec<Store>,
    /// File-level metadata rendered as text, sorted by key or in file order.
    pub metadata: Vec<(String, String)>,
}

/// A parsed header: the tensors (pointing into store 0) and the metadata.
pub(crate) type Parsed = (Vec<LoadedTensor>, Vec<(String, String)>);

/// Maps a whole file read-only. An empty file is reported as truncated (it holds no header).
pub(crate) fn map_file(path: &Path) -> Result<Mmap, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Err(LoadError::Truncated {
            path: path.to_path_buf(),
            what: "the file is empty".into(),
        });
    }
    // SAFETY: the map is read-only (the file is opened read-only and mapped with PROT_READ) and
    // this program never writes the file. As with every memory map, another process truncating
    // the file while it is mapped would fault on access; model files are not edited in place.
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    Ok(map)
}
