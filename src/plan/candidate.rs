//! Planner candidates: a stable string id plus what to run (an affine scheme, or a deployed
//! format named for the evaluator that knows it).
//!
//! Affine ids follow one grammar, parsed back by [`Candidate::parse`]:
//! `{int|uint}{bits}_{channel|tensor|g<N>}_{minmax|mse|entropy|p<percentile>}`, e.g.
//! `int4_g128_minmax`, `int8_channel_mse`, `uint4_g32_minmax`, `int8_tensor_p99.99`. `int` is
//! symmetric and `uint` asymmetric, both under the `onnxruntime` preset (NUMERICS.md §2);
//! `channel` is per output channel (axis 0) and `g<N>` per group of N along the last axis.
//! Format ids are the format names of NUMERICS.md §8 (`q4_k`, `mxfp4`, `nf4`, ...).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::quant::{Calibration, Granularity, Preset, QuantConfig, Scheme, SymmetricRange};

/// A deployed format the sweep measures through a [`super::FormatEvaluator`]; the plan layer
/// knows only its name (the format code lives in `quant`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FormatCandidate {
    /// The format's name as NUMERICS.md §8 spells it (`q4_k`, `mxfp4`, `fp8_e4m3_channel`).
    pub name: String,
}

/// What a candidate runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// Integer quantization with these settings (`quant::quantize_tensor`).
    Affine(QuantConfig),
    /// A deployed format, measured by the evaluator the sweep receives.
    Format(FormatCandidate),
}

/// One planner candidate: the id used in the sweep table, the JSON and on the command line,
/// and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Candidate {
    /// Stable id (see the module documentation for the grammar).
    pub id: String,
    /// What to run.
    pub kind: CandidateKind,
}

/// Why a candidate id or setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    /// Neither an affine id nor a format the evaluator knows.
    #[error(
        "unknown candidate '{0}' (affine ids look like int4_g128_minmax, int8_channel_mse; formats are available only once connected)"
    )]
    Unknown(String),
    /// An affine id whose parts parse but cannot work (bits outside 2..=8, group size 0).
    #[error("candidate '{id}': {reason}")]
    Invalid {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Settings that have no id in the grammar (outlier splits, a channel axis other than 0,
    /// manual ranges, presets other than onnxruntime).
    #[error("these settings have no candidate id: {0}")]
    NoId(String),
}

/// The deployed formats of NUMERICS.md §8, by name, in the order the default list shows them.
pub const DEFAULT_FORMATS: [&str; 26] = [
    "q8_0",
    "q6_k",
    "q5_k",
    "q5_1",
    "q5_0",
    "q4_k",
    "q4_1",
    "q4_0",
    "iq4_nl",
    "q3_k",
    "q2_k",
    "gguf_mxfp4",
    "gguf_nvfp4",
    "mxfp8_e4m3",
    "mxfp8_e5m2",
    "mxfp6_e3m2",
    "mxfp6_e2m3",
    "mxfp4",
    "mxint8",
    "nvfp4",
    "nf4",
    "nf4_dq",
    "fp8_e4m3",
    "fp8_e4m3_channel",
    "fp8_e5m2",
    "fp8_e5m2_channel",
];

/// Code widths of the default affine candidates.
pub const DEFAULT_AFFINE_BITS: [u8; 7] = [2, 3, 4, 5, 6, 7, 8];

/// Granularities of the default affine candidates: per output channel, then groups of 32, 64
/// and 128 along the last axis.
pub const DEFAULT_AFFINE_GRANULARITIES: [Granularity; 4] = [
    Granularity::PerChannel { axis: 0 },
    Granularity::PerGroup { size: 32 },
    Granularity::PerGroup { size: 64 },
    Granularity::PerGroup { size: 128 },
];

impl Candidate {
    /// A symmetric `onnxruntime` affine candidate (the default family).
    ///
    /// ONNX Runtime quantizes symmetric int4 to the full range -8..7 (S = 2·absmax/15) and
    /// every other width to the narrow range (NUMERICS.md §2, the preset table). The preset
    /// already does so at 4 bits; the explicit `SymmetricRange::Full` keeps the candidate's
    /// settings self-describing in recipes.
    pub fn affine(bits: u8, granularity: Granularity, calibration: Calibration) -> Candidate {
        Self::affine_scheme(bits, Scheme::Symmetric, granularity, calibration)
    }

    fn affine_scheme(
        bits: u8,
        scheme: Scheme,
        granularity: Granularity,
        calibration: Calibration,
    ) -> Candidate {
        let cfg = QuantConfig {
            bits,
            scheme,
            preset: Preset::OnnxRuntime,
            symmetric_range: (scheme == Scheme::Symmetric && bits == 4)
                .then_some(SymmetricRange::Full),
            granularity,
            calibration,
            ..QuantConfig::default()
        };
        Candidate {
            id: affine_id(bits, scheme, granularity, calibration),
            kind: CandidateKind::Affine(cfg),
        }
    }

    /// A deployed-format candidate; its id is the format name.
    pub fn format(name: impl Into<String>) -> Candidate {
        let name = name.into();
        Candidate {
            id: name.clone(),
            kind: CandidateKind::Format(FormatCandidate { name }),
        }
    }

    /// Parses an id: an affine id of the grammar, else a format name `is_known_format` accepts.
    pub fn parse(
        id: &str,
        is_known_format: impl Fn(&str) -> bool,
    ) -> Result<Candidate, CandidateError> {
        let id = id.trim();
        if let Some(affine) = parse_affine(id)? {
            return Ok(affine);
        }
        if is_known_format(id) {
            return Ok(Candidate::format(id));
        }
        Err(CandidateError::Unknown(id.to_string()))
    }

    /// The affine settings, if this is an affine candidate.
    pub fn affine_config(&self) -> Option<&QuantConfig> {
        match &self.kind {
            CandidateKind::Affine(cfg) => Some(cfg),
            CandidateKind::Format(_) => None,
        }
    }

    /// The format name written in reports: `int4`/`uint4` for affine candidates (their
    /// settings say the rest), the format name otherwise.
    pub fn format_name(&self) -> String {
        match &self.kind {
            CandidateKind::Affine(cfg) => match cfg.scheme {
                Scheme::Symmetric => format!("int{}", cfg.bits),
                Scheme::Asymmetric => format!("uint{}", cfg.bits),
            },
            CandidateKind::Format(f) => f.name.clone(),
        }
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The id of an affine candidate with these settings.
fn affine_id(
    bits: u8,
    scheme: Scheme,
    granularity: Granularity,
    calibration: Calibration,
) -> String {
    let prefix = match scheme {
        Scheme::Symmetric => "int",
        Scheme::Asymmetric => "uint",
    };
    let gran = match granularity {
        Granularity::PerTensor => "tensor".to_string(),
        Granularity::PerChannel { .. } => "channel".to_string(),
        Granularity::PerGroup { size } => format!("g{size}"),
    };
    let calib = match calibration {
        Calibration::Percentile(p) => format!("p{p}"),
        other => other.name().to_string(),
    };
    format!("{prefix}{bits}_{gran}_{calib}")
}

/// The candidate id of `cfg`, when the grammar can say it (no outlier split, channel axis 0,
/// no manual range, the `onnxruntime` preset without overrides other than the int4 range).
pub fn id_of_config(cfg: &QuantConfig) -> Result<String, CandidateError> {
    let no_id = |what: &str| Err(CandidateError::NoId(what.to_string()));
    if cfg.outliers != crate::quant::OutlierMode::None {
        return no_id("an outlier split");
    }
    if cfg.preset != Preset::OnnxRuntime || cfg.rounding.is_some() {
        return no_id("a preset other than onnxruntime or a rounding override");
    }
    if matches!(cfg.granularity, Granularity::PerChannel { axis } if axis != 0) {
        return no_id("a channel axis other than 0");
    }
    if matches!(cfg.calibration, Calibration::Manual { .. }) {
        return no_id("a manual clip range");
    }
    let candidate =
        Candidate::affine_scheme(cfg.bits, cfg.scheme, cfg.granularity, cfg.calibration);
    if candidate.affine_config() != Some(cfg) {
        return no_id("a symmetric range other than the preset's");
    }
    Ok(candidate.id)
}

/// Parses an affine id; `Ok(None)` when `id` does not follow the affine grammar at all.
fn parse_affine(id: &str) -> Result<Option<Candidate>, CandidateError> {
    let (scheme, rest) = if let Some(rest) = id.strip_prefix("uint") {
        (Scheme::Asymmetric, rest)
    } else if let Some(rest) = id.strip_prefix("int") {
        (Scheme::Symmetric, rest)
    } else {
        return Ok(None);
    };
    let mut parts = rest.splitn(3, '_');
    let (Some(bits), Some(gran), Some(calib)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return Ok(None);
    };
    let invalid = |reason: String| CandidateError::Invalid {
        id: id.to_string(),
        reason,
    };
    if !(2..=8).contains(&bits) {
        return Err(invalid(format!("bits must be 2..=8, got {bits}")));
    }
    let granularity = match gran {
        "channel" => Granularity::PerChannel { axis: 0 },
        "tensor" => Granularity::PerTensor,
        g => match g.strip_prefix('g').map(str::parse::<usize>) {
            Some(Ok(0)) => return Err(invalid("group size must be at least 1".into())),
            Some(Ok(size)) => Granularity::PerGroup { size },
            _ => return Ok(None),
        },
    };
    let calibration = match calib {
        "minmax" => Calibration::MinMax,
        "mse" => Calibration::Mse,
        "entropy" => Calibration::Entropy,
        p => match p.strip_prefix('p').map(str::parse::<f64>) {
            Some(Ok(v)) if v > 0.0 && v <= 100.0 => Calibration::Percentile(v),
            Some(Ok(v)) => return Err(invalid(format!("percentile must be in (0, 100], got {v}"))),
            _ => return Ok(None),
        },
    };
    let candidate = Candidate::affine_scheme(bits, scheme, granularity, calibration);
    // Only the canonical spelling is an id (so "int4_g0128_minmax" does not alias g128).
    if candidate.id != id {
        return Err(invalid(format!("write it as '{}'", candidate.id)));
    }
    Ok(Some(candidate))
}

/// The default affine family: 2..=8 bits × per-channel and per-group 32/64/128 ×
/// min-max and MSE calibration, symmetric, `onnxruntime` (56 candidates).
pub fn default_affine() -> Vec<Candidate> {
    let mut out = Vec::with_capacity(56);
    for bits in DEFAULT_AFFINE_BITS {
        for granularity in DEFAULT_AFFINE_GRANULARITIES {
            for calibration in [Calibration::MinMax, Calibration::Mse] {
                out.push(Candidate::affine(bits, granularity, calibration));
            }
        }
    }
    out
}

/// The min-max half of [`default_affine`] (28 candidates): the MSE calibrator searches many
/// clip ranges per group, so its 28 candidates cost about six times as much to measure as the
/// other 54 candidates together (53 s against 9 s on all-MiniLM-L6-v2, BENCHMARKS.md); the
/// quick list leaves them out.
pub fn minmax_affine() -> Vec<Candidate> {
    default_affine()
        .into_iter()
        .filter(|c| {
            c.affine_config()
                .is_some_and(|cfg| cfg.calibration == Calibration::MinMax)
        })
        .collect()
}

/// The default list: the affine family, then those of `formats` that are known (the caller
/// passes the names its evaluator supports, in [`DEFAULT_FORMATS`] order).
pub fn default_candidates(formats: &[&str]) -> Vec<Candidate> {
    let mut out = default_affine();
    out.extend(formats.iter().map(|name| Candidate::format(*name)));
    out
}

/// The llama-quantize type name (`--tensor-type PATTERN=TYPE`, ggml's lowercase spelling) of
/// a GGUF format candidate, or None for every other candidate.
pub fn gguf_type_name(candidate_id: &str) -> Option<&'static str> {
    Some(match candidate_id {
        "q8_0" => "q8_0",
        "q4_0" => "q4_0",
        "q4_1" => "q4_1",
        "q5_0" => "q5_0",
        "q5_1" => "q5_1",
        "q2_k" => "q2_k",
        "q3_k" => "q3_k",
        "q4_k" => "q4_k",
        "q5_k" => "q5_k",
        "q6_k" => "q6_k",
        "iq4_nl" => "iq4_nl",
        "gguf_mxfp4" => "mxfp4",
        "gguf_nvfp4" => "nvfp4",
        _ => return None,
    })
}

/// What a uniform recipe uses where `candidate_id` cannot apply: llama.cpp's
/// `tensor_type_fallback` for the K-quants (Q2_K, Q3_K → Q4_0; Q4_K → Q5_0; Q5_K → Q5_1;
/// Q6_K → Q8_0) and, for affine per-group candidates, the per-channel candidate of the same
/// bits and calibration. None means "keep the tensor in F16", llama.cpp's last resort.
pub fn fallback_of(candidate: &Candidate) -> Option<Candidate> {
    match &candidate.kind {
        CandidateKind::Format(f) => {
            let to = match f.name.as_str() {
                "q2_k" | "q3_k" => "q4_0",
                "q4_k" => "q5_0",
                "q5_k" => "q5_1",
                "q6_k" => "q8_0",
                _ => return None,
            };
            Some(Candidate::format(to))
        }
        CandidateKind::Affine(cfg) => match cfg.granularity {
            Granularity::PerGroup { .. } => Some(Candidate::affine_scheme(
                cfg.bits,
                cfg.scheme,
                Granularity::PerChannel { axis: 0 },
                cfg.calibration,
            )),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_formats(_: &str) -> bool {
        false
    }

    #[test]
    fn default_family_has_56_unique_ids_that_parse_back() {
        let all = default_affine();
        assert_eq!(all.len(), 7 * 4 * 2);
        let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids[0], "int2_channel_minmax");
        assert_eq!(ids[1], "int2_channel_mse");
        assert_eq!(ids[7], "int2_g128_mse");
        assert!(ids.contains(&"int4_g128_minmax"));
        assert!(ids.contains(&"int8_channel_mse"));
        for c in &all {
            assert_eq!(Candidate::parse(&c.id, no_formats).as_ref(), Ok(c));
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 56);
    }

    #[test]
    fn affine_settings_follow_the_onnxruntime_preset() {
        let c = Candidate::parse("int4_g128_minmax", no_formats).expect("valid id");
        let cfg = c.affine_config().expect("affine");
        assert_eq!(cfg.bits, 4);
        assert_eq!(cfg.scheme, Scheme::Symmetric);
        assert_eq!(cfg.preset, Preset::OnnxRuntime);
        assert_eq!(cfg.granularity, Granularity::PerGroup { size: 128 });
        // ORT's int4 symmetric range is -8..7; int8 stays -127..127.
        assert_eq!(cfg.code_range(), (-8, 7));
        let c8 = Candidate::parse("int8_channel_mse", no_formats).expect("valid id");
        assert_eq!(
            c8.affine_config().map(QuantConfig::code_range),
            Some((-127, 127))
        );
        let u = Candidate::parse("uint4_g32_minmax", no_formats).expect("valid id");
        assert_eq!(
            u.affine_config().map(QuantConfig::code_range),
            Some((0, 15))
        );
        assert_eq!(u.format_name(), "uint4");
        let p = Candidate::parse("int8_tensor_p99.9", no_formats).expect("valid id");
        assert_eq!(
            p.affine_config().map(|c| c.calibration),
            Some(Calibration::Percentile(99.9))
        );
        for c in [&c, &c8, &u, &p] {
            let cfg = c.affine_config().expect("affine");
            assert_eq!(id_of_config(cfg).as_deref(), Ok(c.id.as_str()));
        }
    }

    #[test]
    fn bad_ids_name_the_problem() {
        assert_eq!(
            Candidate::parse("q4_k", no_formats),
            Err(CandidateError::Unknown("q4_k".into()))
        );
        assert_eq!(
            Candidate::parse("q4_k", |n| n == "q4_k"),
            Ok(Candidate::format("q4_k"))
        );
        assert!(matches!(
            Candidate::parse("int9_g32_minmax", no_formats),
            Err(CandidateError::Invalid { .. })
        ));
        assert!(matches!(
            Candidate::parse("int4_g0_minmax", no_formats),
            Err(CandidateError::Invalid { .. })
        ));
        assert!(matches!(
            Candidate::parse("int4_g0128_minmax", no_formats),
            Err(CandidateError::Invalid { .. })
        ));
        assert!(matches!(
            Candidate::parse("int4_g128_p120", no_formats),
            Err(CandidateError::Invalid { .. })
        ));
        assert_eq!(
            Candidate::parse("int4_g128_best", no_formats),
            Err(CandidateError::Unknown("int4_g128_best".into()))
        );
        let cfg = QuantConfig {
            outliers: crate::quant::OutlierMode::Elements,
            ..QuantConfig::default()
        };
        assert!(matches!(id_of_config(&cfg), Err(CandidateError::NoId(_))));
    }

    #[test]
    fn gguf_names_and_fallbacks_follow_llama_cpp() {
        assert_eq!(gguf_type_name("q4_k"), Some("q4_k"));
        assert_eq!(gguf_type_name("gguf_mxfp4"), Some("mxfp4"));
        assert_eq!(gguf_type_name("mxfp4"), None);
        assert_eq!(gguf_type_name("int4_g32_minmax"), None);
        let to = |id: &str| fallback_of(&Candidate::format(id)).map(|c| c.id);
        assert_eq!(to("q4_k").as_deref(), Some("q5_0"));
        assert_eq!(to("q5_k").as_deref(), Some("q5_1"));
        assert_eq!(to("q6_k").as_deref(), Some("q8_0"));
        assert_eq!(to("q2_k").as_deref(), Some("q4_0"));
        assert_eq!(to("q8_0"), None);
        let g = Candidate::affine(4, Granularity::PerGroup { size: 128 }, Calibration::Mse);
        assert_eq!(
            fallback_of(&g).map(|c| c.id).as_deref(),
            Some("int4_channel_mse")
        );
        assert_eq!(
            DEFAULT_FORMATS
                .iter()
                .filter(|f| gguf_type_name(f).is_some())
                .count(),
            13
        );
    }
}
