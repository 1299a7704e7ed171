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

    /// Tells the kernel this process is done with `part` (a sub-slice of [`Store::bytes`]) for
    /// now: the mapped pages leave the process's resident set, so decoding a multi-GB tensor
    /// does not hold the file's pages on top of the f32 copy. The pages stay in the page cache
    /// and a later read maps them again. Owned stores and slices outside the map are left
    /// alone; a failed advice is ignored (it only affects memory use).
    pub(crate) fn release(&self, part: &[u8]) {
        #[cfg(unix)]
        if let Store::Mapped(map) = self {
            let start = (part.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize);
            let inside = start
                .checked_add(part.len())
                .is_some_and(|end| end <= map.len());
            if !inside || part.is_empty() {
                return;
            }
            // SAFETY: `map` is a read-only MAP_SHARED mapping of a file (`Mmap::map` on a file
            // opened read-only). MADV_DONTNEED on a shared file mapping only unmaps the pages
            // from this process; the next access maps the same page-cache pages again, so every
            // live borrow of the map keeps reading the same bytes (the file's contents, which
            // this program never writes). The unsafety memmap2 guards against is private or
            // anonymous mappings, whose contents DONTNEED would reset; this map is neither.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, part.len())
            };
        }
        #[cfg(not(unix))]
        let _ = part;
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

/// A parsed header over a whole file held in `bytes`: the part whose one store is `bytes`.
pub(crate) fn part_from((tensors, metadata): Parsed, bytes: Vec<u8>) -> Part {
    Part {
        tensors,
        stores: vec![Store::Owned(bytes)],
        metadata,
    }
}

/// Opens `path` for reading if it is a regular file (after following symlinks). Checked before
/// opening: opening a FIFO blocks until a writer appears, and devices such as `/dev/zero`
/// never end, so a model path (or a shard name in an index) must not reach one.
pub(crate) fn open_regular_file(path: &Path) -> Result<File, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(LoadError::Unsupported {
            path: path.to_path_buf(),
            message: "not a regular file (a FIFO, device or folder cannot be a model file)".into(),
        });
    }
    File::open(path).map_err(io)
}

/// Maps a whole file read-only. An empty file is reported as truncated (it holds no header).
pub(crate) fn map_file(path: &Path) -> Result<Mmap, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = open_regular_file(path)?;
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
