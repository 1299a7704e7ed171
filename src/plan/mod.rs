//! Planning a whole model (NUMERICS.md §9): the sweep measures every tensor under every
//! candidate, the allocator chooses one candidate per tensor under a size budget; pairing two
//! files of one model for `compare` and `plan --against`.
//!
//! - [`candidate`]: what a candidate is (a stable id plus an affine config or a format name);
//! - [`pattern`]: the tensor-name patterns of the rules (globs, or regexes after `re:`);
//! - [`sweep`](mod@sweep): the streamed, parallel, cancellable, cached measurement
//!   (tensor × candidate → error and true storage), with [`FormatEvaluator`] as the extension
//!   point for the deployed formats;
//! - [`allocate`]: Pareto frontiers, convex hulls, the budgeted assignment with its
//!   Lagrangian bound, the size–error curve and the uniform recipes;
//! - [`formats`]: every `quant::formats` format as a candidate;
//! - [`pair`] and [`compare`]: two files of one model matched tensor by tensor.
//!
//! No I/O beyond reading the model through `tensor`; the reports live in `report`.

pub mod allocate;
pub mod candidate;
pub mod compare;
pub mod formats;
pub mod pair;
pub mod pattern;
pub mod sweep;

pub use allocate::{
    AllocError, Allocation, Budget, Choice, CurvePoint, KeepFormat, Objective, Problem, Rules,
    UniformPoint, Why,
};
pub use candidate::{Candidate, CandidateError, CandidateKind, FormatCandidate};
pub use pattern::{NamePattern, PatternError};
pub use sweep::{
    FormatEvaluator, FormatFailure, FormatOutcome, Measurement, Outcome, SweepCache, SweepError,
    SweepOptions, SweepTable, SweepTensor, TensorStatus, sweep,
};
