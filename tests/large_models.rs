//! Models at any size, through the CLI binary: a tensor over 2 GiB, a sharded model of several
//! GB, a 30 GB model and a header declaring 100 GB in a 1 KB file. The tests write sparse files
//! (the header, `set_len`, a few values), so the gigabytes cost no disk and no time to write;
//! holes read as zeros. Each child's own peak RSS and page faults come from `wait4`; speed is
//! measured by scripts/bench_sizes.sh, never asserted here.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use quantscope::tensor::{DType, LoadError, Model};
use serde_json::Value;

/// "300 MB" of the memory promise: what quantize may hold beyond the largest f32 copy.
const SLACK_BYTES: u64 = 300_000_000;

/// What a child run of the CLI produced and cost.
struct Run {
    stdout: Vec<u8>,
    stderr: String,
    /// The exit code (None when a signal ended the child).
    code: Option<i32>,
    /// Peak resident set of the child alone, in bytes (`ru_maxrss`).
    peak_rss_bytes: u64,
    /// Minor plus major page faults of the child.
    page_faults: u64,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {:?}, stderr: {}",
                self.code, self.stderr
            )
        })
    }
}

/// Runs the quantscope binary with `args`, optionally under an address-space limit, and reaps
/// it with `wait4` so its resource usage is its own (tests in this binary run in parallel, so
/// `RUSAGE_CHILDREN` would mix them).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which std's Child::wait cannot replace"
)]
fn run_cli<S: AsRef<OsStr>>(args: &[S], address_space_limit: Option<u64>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quantscope"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(limit) = address_space_limit {
        // SAFETY: the closure runs in the forked child before exec and calls only setrlimit,
        // which is async-signal-safe; it allocates nothing and touches no shared state.
        unsafe {
            command.pre_exec(move || {
                let rlim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &rlim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().expect("the quantscope binary starts");
    let mut stdout_pipe = child.stdout.take().expect("piped stdout");
    let mut stderr_pipe = child.stderr.take().expect("piped stderr");
    let stdout_reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout_pipe.read_to_end(&mut out).map(|_| out)
    });
    let mut stderr = String::new();
    stderr_pipe
        .read_to_string(&mut stderr)
        .expect("stderr readable");
    let stdout = stdout_reader
        .join()
        .expect("reader thread")
        .expect("stdout readable");
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let mut status = 0;
    // SAFETY: rusage is plain data; an all-zero value is valid and wait4 overwrites it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; status and usage are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4: {error}"
        );
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // ru_maxrss is in KiB on Linux.
    let peak_rss_bytes = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    let page_faults =
        u64::try_from(usage.ru_minflt).unwrap_or(0) + u64::try_from(usage.ru_majflt).unwrap_or(0);
    Run {
        stdout,
        stderr,
        code,
        peak_rss_bytes,
        page_faults,
    }
}

/// One tensor of a sparse safetensors file: name, dtype name, shape, and (element index, value)
/// pairs written into the otherwise-zero data.
struct Sparse<'a> {
    name: &'a str,
    dtype: &'a str,
    shape: Vec<u64>,
    values: Vec<(u64, f64)>,
}

fn element_bytes(dtype: &str, value: f64) -> Vec<u8> {
    match dtype {
        // The test values are small integers, exact in every type used here.
        "F32" => (value as f32).to_le_bytes().to_vec(),
        "F64" => value.to_le_bytes().to_vec(),
        "F16" => half::f16::from_f64(value).to_le_bytes().to_vec(),
        other => panic!("no writer for {other}"),
    }
}

/// Writes a sparse safetensors file: the header, then `set_len` over the data, then the listed
/// values. Returns the byte offset where the data section starts.
fn write_sparse_safetensors(path: &Path, tensors: &[Sparse]) -> u64 {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    let mut begins = Vec::new();
    for t in tensors {
        let len = DType::from_name(t.dtype)
            .and_then(|d| d.size_bytes_for(t.shape.iter().product()))
            .expect("a dtype and shape that fill whole bytes");
        header.insert(
            t.name.to_string(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + len]}),
        );
        begins.push(offset);
        offset += len;
    }
    let mut text = serde_json::to_string(&header).expect("header serializes");
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let data_start = 8 + text.len() as u64;
    let mut file = File::create(path).expect("create fixture");
    file.write_all(&(text.len() as u64).to_le_bytes())
        .expect("write header length");
    file.write_all(text.as_bytes()).expect("write header");
    file.set_len(data_start + offset).expect("set_len");
    for (t, begin) in tensors.iter().zip(begins) {
        for &(index, value) in &t.values {
            let bytes = element_bytes(t.dtype, value);
            file.seek(SeekFrom::Start(
                data_start + begin + index * bytes.len() as u64,
            ))
            .expect("seek");
            file.write_all(&bytes).expect("write value");
        }
    }
    data_start
}

/// The tensors of a `quantize --json` run, by name.
fn reports_by_name(run: &Run) -> Vec<(String, Value)> {
    let json = run.json();
    json.as_array()
        .expect("quantize --json prints an array")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r.clone(),
            )
        })
        .collect()
}

fn path_arg(path: &Path) -> &OsStr {
    path.as_os_str()
}

#[test]
fn a_tensor_over_2_gib_opens_lists_and_quantizes_within_its_f32_copy_plus_300_mb() {
    // 2^29 + 2^16 F32 values = 2 GiB + 256 KiB stored, shape [8193, 65536].
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.safetensors");
    let numel: u64 = (1 << 29) + (1 << 16);
    write_sparse_safetensors(
        &path,
        &[Sparse {
            name: "big",
            dtype: "F32",
            shape: vec![8193, 65536],
            values: vec![(0, -3.0), (numel / 2, 1.0), (numel - 1, 5.0)],
        }],
    );

    // Opens from the header alone and lists.
    let model = Model::open(&path).unwrap();
    assert_eq!(model.tensors()[0].numel(), numel);
    assert_eq!(model.tensors()[0].size_bytes, numel * 4);
    let listed = run_cli(
        &[OsStr::new("inspect"), OsStr::new("--json"), path_arg(&path)],
        None,
    );
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let row = &listed.json()["tensors"][0];
    assert_eq!(row["numel"], numel);
    assert_eq!(row["size_bytes"], numel * 4);
    assert_eq!(row["dtype"], "F32");

    // Quantizes (per-tensor symmetric int8, min-max): the same answer as a small tensor
    // holding the same nonzero values, and at most the f32 copy + 300 MB resident.
    let run = run_cli(
        &[
            OsStr::new("quantize"),
            OsStr::new("--json"),
            path_arg(&path),
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let reports = reports_by_name(&run);
    let big = &reports[0].1;
    let small_path = dir.path().join("small.safetensors");
    write_sparse_safetensors(
        &small_path,
        &[Sparse {
            name: "big",
            dtype: "F32",
            shape: vec![4],
            values: vec![(0, -3.0), (2, 1.0), (3, 5.0)],
        }],
    );
    let small_run = run_cli(
        &[
            OsStr::new("quantize"),
            OsStr::new("--json"),
            path_arg(&small_path),
        ],
        None,
    );
    let small = &reports_by_name(&small_run)[0].1;
    // Symmetric: the clip range is [-absmax, absmax] = [-5, 5].
    assert_eq!(big["clip_min"], -5.0);
    assert_eq!(big["clip_max"], 5.0);
    for key in ["scale", "zero_point", "clip_min", "clip_max"] {
        assert_eq!(big[key], small[key], "{key}");
    }
    // Every element is exact except the three nonzero ones, so the worst error is the
    // small tensor's; the count is every element.
    assert_eq!(
        big["metrics"]["max_abs_error"],
        small["metrics"]["max_abs_error"]
    );
    assert_eq!(big["metrics"]["count"], numel);
    let bound = numel * 4 + SLACK_BYTES;
    assert!(
        run.peak_rss_bytes <= bound,
        "quantize peaked at {} bytes, over the f32 copy + 300 MB = {bound}",
        run.peak_rss_bytes
    );
    eprintln!(
        "2 GiB tensor: quantize peak RSS {:.1} MiB (bound {:.1} MiB)",
        run.peak_rss_bytes as f64 / 1048576.0,
        bound as f64 / 1048576.0
    );
}

#[test]
fn a_sharded_model_of_several_gb_quantizes_tensor_by_tensor() {
    // Three shards of two F64 tensors of 2^26 values (512 MiB stored, 256 MiB as f32) each:
    // 3 GiB in all. Holding more than one tensor at a time, or the mapped file pages, would
    // exceed the largest f32 copy + 300 MB.
    let dir = tempfile::tempdir().unwrap();
    let numel: u64 = 1 << 26;
    let mut weight_map = serde_json::Map::new();
    for shard in 0..3u64 {
        let file = format!("model-{:05}-of-00003.safetensors", shard + 1);
        let names: Vec<String> = (0..2).map(|t| format!("layers.{shard}.w{t}")).collect();
        let tensors: Vec<Sparse> = names
            .iter()
            .enumerate()
            .map(|(t, name)| {
                // Tensor k = 2 * shard + t spans [-(k + 1), 2 (k + 1)].
                let k = (2 * shard + t as u64 + 1) as f64;
                Sparse {
                    name,
                    dtype: "F64",
                    shape: vec![8192, 8192],
                    values: vec![(0, -k), (numel - 1, 2.0 * k)],
                }
            })
            .collect();
        write_sparse_safetensors(&dir.path().join(&file), &tensors);
        for name in names {
            weight_map.insert(name, Value::String(file.clone()));
        }
    }
    let index = dir.path().join("model.safetensors.index.json");
    std::fs::write(
        &index,
        serde_json::json!({"metadata": {"total_size": 6 * numel * 8}, "weight_map": weight_map})
            .to_string(),
    )
    .unwrap();

    let model = Model::open(&index).unwrap();
    assert_eq!(model.tensors().len(), 6);
    assert_eq!(model.files().len(), 3);
    let listed = run_cli(
        &[
            OsStr::new("inspect"),
            OsStr::new("--json"),
            path_arg(&index),
        ],
        None,
    );
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(listed.json()["total_bytes"], 6 * numel * 8);

    let run = run_cli(
        &[
            OsStr::new("quantize"),
            OsStr::new("--json"),
            path_arg(dir.path()),
        ],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let reports = reports_by_name(&run);
    assert_eq!(reports.len(), 6);
    for (name, report) in &reports {
        let shard: f64 = name[7..8].parse().unwrap();
        let t: f64 = name[10..11].parse().unwrap();
        let k = 2.0 * shard + t + 1.0;
        // Symmetric: [-absmax, absmax] with absmax = 2k.
        assert_eq!(report["clip_min"], -2.0 * k, "{name}");
        assert_eq!(report["clip_max"], 2.0 * k, "{name}");
        assert_eq!(report["metrics"]["count"], numel, "{name}");
    }
    let bound = numel * 4 + SLACK_BYTES;
    assert!(
        run.peak_rss_bytes <= bound,
        "quantize of 3 GiB peaked at {} bytes, over the largest f32 copy + 300 MB = {bound}",
        run.peak_rss_bytes
    );
    eprintln!(
        "3 GiB sharded: quantize peak RSS {:.1} MiB (bound {:.1} MiB)",
        run.peak_rss_bytes as f64 / 1048576.0,
        bound as f64 / 1048576.0
    );
}

/// Pages of `path` in `range` that are in the page cache now (`mincore`).
fn resident_pages(path: &Path, range: std::ops::Range<u64>) -> usize {
    let file = File::open(path).expect("the test file opens");
    // SAFETY: a read-only map of a file this test owns; only its residency is queried, its
    // bytes are never read.
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("the test file maps");
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .expect("the page size is positive");
    let mut residency = vec![0u8; map.len().div_ceil(page)];
    // SAFETY: the map's pointer and length describe one live mapping; `residency` holds one
    // byte per page of it, as mincore requires.
    let status = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            residency.as_mut_ptr(),
        )
    };
    assert_eq!(status, 0, "mincore: {}", std::io::Error::last_os_error());
    let first = usize::try_from(range.start).expect("a test offset fits usize") / page;
    let last = usize::try_from(range.end)
        .expect("a test offset fits usize")
        .div_ceil(page);
    residency[first..last]
        .iter()
        .filter(|&&r| r & 1 == 1)
        .count()
}

#[test]
fn a_30_gb_model_lists_without_its_data_being_read() {
    // 30 F16 tensors of 500,000,000 values (1 GB each): 30 GB of holes behind a small header.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.safetensors");
    let names: Vec<String> = (0..30).map(|i| format!("blk.{i}.ffn")).collect();
    let tensors: Vec<Sparse> = names
        .iter()
        .map(|name| Sparse {
            name,
            dtype: "F16",
            shape: vec![20_000, 25_000],
            values: Vec::new(),
        })
        .collect();
    let data_start = write_sparse_safetensors(&path, &tensors);
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(file_len - data_start, 30_000_000_000);
    // The test wrote only the header: no data page is cached yet.
    let before = resident_pages(&path, data_start.next_multiple_of(4096)..file_len);

    let run = run_cli(
        &[OsStr::new("inspect"), OsStr::new("--json"), path_arg(&path)],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["tensor_count"], 30);
    assert_eq!(json["total_bytes"], 30_000_000_000u64);
    assert_eq!(json["tensors"][29]["name"], "blk.29.ffn");
    assert_eq!(
        json["tensors"][29]["shape"],
        serde_json::json!([20000, 25000])
    );

    // Not read: at most 16 MiB of the 30 GB data region entered the page cache (the kernel's
    // read-around next to the header), and the child took far fewer page faults than the
    // ~458,000 that mapping 30 GB in even 64 KiB fault-around steps would need.
    let after = resident_pages(&path, data_start.next_multiple_of(4096)..file_len);
    let pages_read = after.saturating_sub(before);
    assert!(
        pages_read <= 4096,
        "inspect brought {pages_read} data pages into memory"
    );
    assert!(
        run.page_faults < 50_000,
        "inspect took {} page faults",
        run.page_faults
    );
    eprintln!(
        "30 GB model: inspect touched {pages_read} data pages, {} page faults, peak RSS {:.1} MiB",
        run.page_faults,
        run.peak_rss_bytes as f64 / 1048576.0
    );
}

/// A file of exactly 1 KiB: `head`, then zeros.
fn one_kib_file(path: &Path, head: &[u8]) {
    assert!(head.len() <= 1024);
    let mut bytes = head.to_vec();
    bytes.resize(1024, 0);
    std::fs::write(path, bytes).expect("the 1 KiB file is written");
}

/// GGUF v3 bytes declaring one F32 tensor of `dims` (innermost first) at offset 0.
fn gguf_header(dims: &[u64]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(1u64.to_le_bytes()); // tensors
    out.extend(0u64.to_le_bytes()); // metadata pairs
    out.extend(4u64.to_le_bytes());
    out.extend(b"huge");
    out.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        out.extend(d.to_le_bytes());
    }
    out.extend(0u32.to_le_bytes()); // F32
    out.extend(0u64.to_le_bytes()); // offset
    out
}

#[test]
fn a_100_gb_tensor_declared_in_a_1_kb_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let numel: u64 = 25_000_000_000; // F32: 100,000,000,000 bytes
    let files: Vec<(PathBuf, &str)> = vec![
        {
            let path = dir.path().join("huge.safetensors");
            let header = format!(
                "{{\"huge\":{{\"dtype\":\"F32\",\"shape\":[{numel}],\"data_offsets\":[0,{}]}}}}",
                numel * 4
            );
            let mut head = (header.len() as u64).to_le_bytes().to_vec();
            head.extend(header.as_bytes());
            one_kib_file(&path, &head);
            (
                path,
                "offsets [0, 100000000000) fall outside the data section",
            )
        },
        {
            let path = dir.path().join("huge.gguf");
            one_kib_file(&path, &gguf_header(&[50_000, 500_000]));
            (
                path,
                "offsets [0, 100000000000) fall outside the data section",
            )
        },
        {
            let path = dir.path().join("huge.npy");
            let dict =
                format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({numel},), }}\n");
            let mut head = b"\x93NUMPY\x01\x00".to_vec();
            head.extend((dict.len() as u16).to_le_bytes());
            head.extend(dict.as_bytes());
            one_kib_file(&path, &head);
            (path, "the data needs 100000000000 bytes")
        },
    ];
    for (path, message) in &files {
        // In the library: a typed error naming the sizes, before anything is allocated.
        let error = Model::open(path).unwrap_err();
        assert!(
            matches!(
                error,
                LoadError::OutOfBounds { .. } | LoadError::Truncated { .. }
            ),
            "{}: {error}",
            path.display()
        );
        assert!(
            error.to_string().contains(message),
            "{}: {error}",
            path.display()
        );
        // Through the CLI, with the address space capped at 4 GiB: an attempt to allocate
        // the declared 100 GB (even lazily, as calloc would) fails that cap and aborts the
        // process, so exit code 1 with the message proves none was attempted.
        for command in ["inspect", "quantize"] {
            let run = run_cli(&[OsStr::new(command), path_arg(path)], Some(4 << 30));
            assert_eq!(
                run.code,
                Some(1),
                "{command} {}: {}",
                path.display(),
                run.stderr
            );
            assert!(
                run.stderr.contains(message),
                "{command} {}: {}",
                path.display(),
                run.stderr
            );
            assert!(
                run.peak_rss_bytes < 200 << 20,
                "{command} used {} bytes",
                run.peak_rss_bytes
            );
        }
    }
    // The cap is real: under it, decoding a tensor whose f32 copy is over 4 GiB (1.2 billion
    // F4 values, 600 MB on disk) is an allocation failure that aborts the process.
    let path = dir.path().join("f4.safetensors");
    write_sparse_safetensors(
        &path,
        &[Sparse {
            name: "w",
            dtype: "F4",
            shape: vec![1_200_000_000],
            values: Vec::new(),
        }],
    );
    let run = run_cli(&[OsStr::new("quantize"), path_arg(&path)], Some(4 << 30));
    assert_eq!(
        run.code, None,
        "killed by abort, not exited: {}",
        run.stderr
    );
    assert!(run.stderr.contains("memory allocation"), "{}", run.stderr);
}
