//! The command-line grammar (clap derive): the app's file arguments and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::float::Overflow;
use crate::quant::formats::QuantFormat;
use crate::quant::{Calibration, Granularity, OutlierMode, Preset, Rounding, Scheme};

/// A clap value enum that is a thin adapter of a core enum: one conversion each way, so the CLI
/// spells the settings but the core's types are the settings model.
macro_rules! adapter {
    ($arg:ident <=> $core:ident { $($variant:ident => $core_variant:ident),* $(,)? }) => {
        impl From<$arg> for $core {
            fn from(a: $arg) -> Self {
                match a {
                    $($arg::$variant => $core::$core_variant),*
                }
            }
        }

        impl From<$core> for $arg {
            fn from(c: $core) -> Self {
                match c {
                    $($core::$core_variant => $arg::$variant),*
                }
            }
        }
    };
}

/// See neural-network quantization: float bit layouts, weight histograms with calibration
/// thresholds, and quantization error on real model files.
///
/// With no subcommand, opens the desktop app (the built-in demo model, or the FILES given).
#[derive(Debug, Parser)]
#[command(name = "quantscope", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A subcommand; without one the desktop app opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Model files to open in the app (.safetensors, model.safetensors.index.json, a folder, .gguf, .npy, .npz).
    pub files: Vec<PathBuf>,
}

/// The headless commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a model's tensors: name, dtype, shape, size (and statistics with --stats).
    Inspect(InspectArgs),
    /// Quantize tensors and report the clip ranges, scales, error metrics and outliers.
    Quantize(Box<QuantizeArgs>),
    /// Show how a value is stored in FP32, FP16, BF16 and FP8: bit fields, stored value, error.
    Bits(BitsArgs),
    /// Measure every tensor under every candidate and choose one per tensor under a size budget.
    Plan(Box<PlanArgs>),
    /// Compare a quantized model (GGUF, FP8 safetensors, ...) with its original, tensor by tensor.
    Compare(CompareArgs),
}

/// Arguments of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The original model (.safetensors, sharded index or folder, GGUF in F32/F16/BF16, .npz).
    pub original: PathBuf,
    /// The quantized model (GGUF of any supported type, FP8/F16/BF16 safetensors, ...).
    pub quantized: PathBuf,
    /// Order of the text table.
    #[arg(long, value_enum, default_value_t = CompareSortArg::File)]
    pub sort: CompareSortArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Beside each tensor, the best of the planner's quick candidates (min-max affine family
    /// and every deployed format) at no more bits per weight than the file spends on it, and
    /// how many dB the file's choice is behind it (quantizes every original tensor once per
    /// candidate: seconds on all-MiniLM-L6-v2).
    #[arg(long)]
    pub best: bool,
}

/// Table order of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareSortArg {
    /// The original model's tensor order.
    File,
    /// SQNR, worst first.
    Sqnr,
    /// Relative MSE, worst first.
    RelMse,
    /// Tensor name.
    Name,
    /// Bits per weight, highest first.
    Bpw,
}

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file (or sharded index, or folder).
    pub file: PathBuf,
    /// Also compute statistics (min, max, mean, std, absmax, percentiles, NaN/Inf/zero/subnormal counts).
    #[arg(long)]
    pub stats: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Read FILE as calibration batches of one tensor (members batch_00, batch_01, …, each
    /// [rows, features]) and report the calibrators' thresholds after each batch (running
    /// min-max, moving average, histogram percentile and entropy) and the per-feature ranges.
    #[arg(long)]
    pub batches: bool,
}

/// Arguments of `bits`.
#[derive(Debug, Args)]
pub struct BitsArgs {
    /// A number (1e8, -0.1, inf, nan) or a hex bit pattern (0x3c00: its width picks the format
    /// it is read in, unless --format names one).
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// Which format to show.
    #[arg(long, value_enum, default_value_t = FormatArg::All)]
    pub format: FormatArg,
    /// Overflow in FP8, E8M0 and UE4M3: saturate to ±max (PyTorch, ONNX default) or become
    /// NaN/Inf (ml_dtypes). FP4 and FP6 have neither and always saturate.
    #[arg(long, value_enum, default_value_t = OverflowArg::Saturate)]
    pub overflow: OverflowArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A float format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// IEEE binary32.
    Fp32,
    /// IEEE binary16.
    Fp16,
    /// bfloat16.
    Bf16,
    /// FP8 E4M3FN.
    #[value(name = "fp8-e4m3")]
    Fp8E4m3,
    /// FP8 E5M2.
    #[value(name = "fp8-e5m2")]
    Fp8E5m2,
    /// OCP MX FP6 E2M3 (no Inf or NaN).
    #[value(name = "fp6-e2m3")]
    Fp6E2m3,
    /// OCP MX FP6 E3M2 (no Inf or NaN).
    #[value(name = "fp6-e3m2")]
    Fp6E3m2,
    /// OCP MX FP4 E2M1 (no Inf or NaN).
    #[value(name = "fp4-e2m1")]
    Fp4E2m1,
    /// OCP MX E8M0 block scale (unsigned powers of two).
    #[value(name = "e8m0")]
    E8m0,
    /// Unsigned E4M3 (the NVFP4 block scale).
    #[value(name = "ue4m3")]
    Ue4m3,
    /// Every format.
    All,
}

/// FP8 overflow policy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverflowArg {
    /// Clamp to ±max finite.
    Saturate,
    /// Become NaN (E4M3FN, E8M0, UE4M3) or Inf (E5M2).
    Nan,
}

/// Arguments of `quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The model file (or sharded index, or folder).
    pub file: PathBuf,
    /// The storage format: `int` (the affine integer scheme the flags below describe) or a
    /// deployed format, which alone decides every bit: q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k
    /// q5_k q6_k iq4_nl gguf_mxfp4 gguf_nvfp4 mxfp4 mxfp6_e2m3 mxfp6_e3m2 mxfp8_e4m3 mxfp8_e5m2
    /// mxint8 nvfp4 nf4 nf4_dq fp8_e4m3 fp8_e4m3_channel fp8_e5m2 fp8_e5m2_channel.
    #[arg(long, default_value = "int", value_parser = format_choices(), hide_possible_values = true)]
    pub format: FormatChoice,
    /// An importance matrix (llama-imatrix's GGUF with `NAME.in_sum2` / `NAME.counts`, or the
    /// legacy imatrix.dat) for the formats whose reference uses one (q4_0 … q6_k, iq4_nl): each
    /// tensor it names is quantized with its per-column weights, as llama-quantize does.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// Apply a recipe from `quantscope plan --out`: each tensor it plans is quantized in its
    /// chosen format or affine settings (the flags above are then not used), kept tensors stay
    /// unquantized, and each report carries the error the plan measured (`planned_mse`).
    #[arg(
        long,
        value_name = "RECIPE.json",
        conflicts_with = "calibration_batches"
    )]
    pub recipe: Option<PathBuf>,
    /// A tensor to quantize (repeatable); default: every float tensor.
    #[arg(long = "tensor", value_name = "NAME")]
    pub tensors: Vec<String>,
    /// Bits per code: 2 to 8, or 16.
    #[arg(long, default_value_t = 8)]
    pub bits: u32,
    /// Symmetric (zero point 0) or asymmetric (zero point shifts the grid).
    #[arg(long, value_enum, default_value_t = SchemeArg::Symmetric)]
    pub scheme: SchemeArg,
    /// One scale per tensor, per channel (along --axis), or per group of --group-size along the last axis.
    #[arg(long, value_enum, default_value_t = GranularityArg::Tensor)]
    pub granularity: GranularityArg,
    /// The channel axis for --granularity channel.
    #[arg(long, default_value_t = 0)]
    pub axis: usize,
    /// Group size for --granularity group.
    #[arg(long, default_value_t = 128)]
    pub group_size: usize,
    /// How the clip range is chosen.
    #[arg(long, value_enum, default_value_t = CalibrationArg::Minmax)]
    pub calibration: CalibrationArg,
    /// The percentile p for --calibration percentile.
    #[arg(long, default_value_t = 99.99)]
    pub percentile: f64,
    /// Which library's conventions to follow.
    #[arg(long, value_enum, default_value_t = PresetArg::Onnxruntime)]
    pub preset: PresetArg,
    /// Override the preset's tie rule.
    #[arg(long, value_enum)]
    pub rounding: Option<RoundingArg>,
    /// Keep outliers in FP16: none, single elements, or whole input columns (LLM.int8()).
    #[arg(long, value_enum, default_value_t = OutliersArg::None)]
    pub outliers: OutliersArg,
    /// Outlier threshold: an absolute value (6.0) or a multiple of the std ("3std").
    #[arg(long, default_value = "6.0")]
    pub outlier_threshold: String,
    /// Print JSON (one object per tensor, in an array).
    #[arg(long)]
    pub json: bool,
    /// With --json, print every per-channel / per-group value instead of their min, max and
    /// mean (the tensors themselves go through --output).
    #[arg(long, requires = "json")]
    pub full: bool,
    /// Write codes, scales, zero points and dequantized values to this safetensors file.
    #[arg(long, value_name = "OUT.safetensors")]
    pub output: Option<PathBuf>,
    /// Calibrate on these batches instead of on each tensor (static activation quantization):
    /// an .npz of batch_00, batch_01, … each [rows, features]. Prints the thresholds after each
    /// batch, then quantizes every selected tensor with the final range. Per-tensor only;
    /// --calibration minmax (ONNX Runtime), percentile (its histogram percentile) or entropy
    /// (TensorRT's, symmetric).
    #[arg(long, value_name = "BATCHES.npz")]
    pub calibration_batches: Option<PathBuf>,
    /// With --calibration-batches and --calibration minmax: ONNX Runtime's moving average of
    /// the batch ranges with this averaging constant (its default is 0.01) instead of the
    /// global min and max.
    #[arg(long, value_name = "C", requires = "calibration_batches")]
    pub moving_average: Option<f32>,
}

/// `--format`: `None` is `int` (the affine scheme), else a deployed format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatChoice(pub Option<QuantFormat>);

/// The parser of `--format`: "int" or one of [`QuantFormat::ALL`]'s names.
fn format_choices() -> impl clap::builder::TypedValueParser<Value = FormatChoice> {
    use clap::builder::TypedValueParser;
    let names = std::iter::once("int").chain(QuantFormat::ALL.iter().map(|f| f.name()));
    clap::builder::PossibleValuesParser::new(names.collect::<Vec<_>>())
        .map(|name: String| FormatChoice(QuantFormat::from_name(&name)))
}

adapter!(OverflowArg <=> Overflow { Saturate => Saturate, Nan => NonFinite });
adapter!(SchemeArg <=> Scheme { Symmetric => Symmetric, Asymmetric => Asymmetric });
adapter!(PresetArg <=> Preset {
    Onnxruntime => OnnxRuntime,
    Pytorch => PyTorch,
    Tensorrt => TensorRt,
    Tflite => TfLite,
    Textbook => Textbook,
});
adapter!(RoundingArg <=> Rounding { HalfEven => HalfEven, HalfAway => HalfAway, HalfUp => HalfUp });
adapter!(OutliersArg <=> OutlierMode { None => None, Elements => Elements, Columns => Columns });

impl GranularityArg {
    /// The core's granularity, with the axis and group size of the other flags.
    pub fn with(self, axis: usize, group_size: usize) -> Granularity {
        match self {
            Self::Tensor => Granularity::PerTensor,
            Self::Channel => Granularity::PerChannel { axis },
            Self::Group => Granularity::PerGroup { size: group_size },
        }
    }
}

impl From<Granularity> for GranularityArg {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::PerTensor => Self::Tensor,
            Granularity::PerChannel { .. } => Self::Channel,
            Granularity::PerGroup { .. } => Self::Group,
        }
    }
}

impl CalibrationArg {
    /// The core's calibration, with the percentile of `--percentile`.
    pub fn with(self, percentile: f64) -> Calibration {
        match self {
            Self::Minmax => Calibration::MinMax,
            Self::Percentile => Calibration::Percentile(percentile),
            Self::Entropy => Calibration::Entropy,
            Self::Mse => Calibration::Mse,
        }
    }
}

/// Quantization scheme on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// z = 0, range [-absmax, absmax].
    Symmetric,
    /// Range [min, max] with a zero point.
    Asymmetric,
}

/// Granularity on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GranularityArg {
    /// One scale for the whole tensor.
    Tensor,
    /// One scale per index of --axis.
    Channel,
    /// One scale per --group-size elements along the last axis.
    Group,
}

/// Calibration on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CalibrationArg {
    /// The finite min and max.
    Minmax,
    /// Percentile --percentile of the values (or of |x| for symmetric).
    Percentile,
    /// TensorRT's KL-divergence threshold.
    Entropy,
    /// The clip range with the least mean squared error.
    Mse,
}

/// Preset on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// ONNX Runtime / ONNX QuantizeLinear (default).
    Onnxruntime,
    /// PyTorch quantize_per_* and observers.
    Pytorch,
    /// NVIDIA TensorRT.
    Tensorrt,
    /// TensorFlow Lite.
    Tflite,
    /// The seed text's arithmetic.
    Textbook,
}

/// Tie rule on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoundingArg {
    /// Round half to even (banker's rounding).
    HalfEven,
    /// Round half away from zero.
    HalfAway,
    /// Round half up, floor(v + 0.5).
    HalfUp,
}

/// Outlier mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutliersArg {
    /// No split.
    None,
    /// Elements with |x| >= threshold stay FP16.
    Elements,
    /// Input columns holding any |x| >= threshold stay FP16.
    Columns,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The model file (or sharded index, or folder).
    pub model: PathBuf,
    /// Budget in average bits per weight over all tensors (default 4.5).
    #[arg(long, value_name = "B", conflicts_with = "budget_size")]
    pub budget_bpw: Option<f64>,
    /// Budget in bytes of tensor data (headers excluded): 12000000, 12MB, 11.5MiB, 2G (K/M/G
    /// and KiB/MiB/GiB are powers of 1024, KB/MB/GB of 1000).
    #[arg(long, value_name = "SIZE")]
    pub budget_size: Option<String>,
    /// Comma-separated candidate ids (int4_g128_minmax, int8_channel_mse, q4_k, mxfp4, nf4, ...);
    /// "affine" is the affine family (2-8 bits x channel/g32/g64/g128 x minmax/mse), "minmax"
    /// and "mse" its halves, "formats" every deployed format. Default: minmax,formats (the MSE
    /// half takes about 6x as long as the default list to measure).
    #[arg(long, value_name = "LIST")]
    pub candidates: Option<String>,
    /// llama.cpp importance matrix (imatrix.gguf or legacy imatrix.dat) weighting the errors
    /// per input column; entries match tensors by exact name.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// Fix the tensors PATTERN names to CANDIDATE (repeatable). PATTERN is a glob over the
    /// whole name (* crosses dots), or re:REGEX searched in the name.
    #[arg(long = "pin", value_name = "PATTERN=CANDIDATE")]
    pub pins: Vec<String>,
    /// Keep the tensors PATTERN names in float: their stored F16/BF16/F32, or the format given
    /// (repeatable).
    #[arg(long = "keep", value_name = "PATTERN[=F16|BF16|F32]")]
    pub keeps: Vec<String>,
    /// Plan 1-D tensors too (by default norms and biases stay in float, as runtimes keep them).
    #[arg(long)]
    pub plan_vectors: bool,
    /// Smallest bits per weight for the tensors PATTERN names (repeatable).
    #[arg(long = "min-bpw", value_name = "PATTERN=B")]
    pub min_bpw: Vec<String>,
    /// Largest bits per weight for the tensors PATTERN names (repeatable).
    #[arg(long = "max-bpw", value_name = "PATTERN=B")]
    pub max_bpw: Vec<String>,
    /// What to minimise: the sum of numel x relative MSE, or of numel x MSE.
    #[arg(long, value_enum, default_value_t = ObjectiveArg::RelMse)]
    pub objective: ObjectiveArg,
    /// Print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write the recipe (tensor -> candidate, settings, measured error and bits) as JSON.
    #[arg(long, value_name = "RECIPE.json")]
    pub out: Option<PathBuf>,
    /// A quantized file of the same model (GGUF, FP8 safetensors, ...): paired as `compare`
    /// pairs them, its own assignment becomes a point beside the curve.
    #[arg(long, value_name = "FILE")]
    pub against: Option<PathBuf>,
    /// Write the whole measurement table (one row per tensor x candidate), .json or .csv.
    #[arg(long, value_name = "TABLE.json|.csv")]
    pub sweep: Option<PathBuf>,
}

/// The planner's objective on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Sum over planned tensors of numel x MSE / mean(x^2).
    RelMse,
    /// Sum over planned tensors of numel x MSE.
    Mse,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every adapter maps each variant to its core value and back to itself.
    fn round_trips<A, C>()
    where
        A: ValueEnum + Copy + PartialEq + std::fmt::Debug + From<C>,
        C: From<A>,
    {
        for &a in A::value_variants() {
            assert_eq!(A::from(C::from(a)), a);
        }
    }

    #[test]
    fn clap_enums_round_trip_through_the_core_types() {
        round_trips::<OverflowArg, Overflow>();
        round_trips::<SchemeArg, Scheme>();
        round_trips::<PresetArg, Preset>();
        round_trips::<RoundingArg, Rounding>();
        round_trips::<OutliersArg, OutlierMode>();
        for &g in GranularityArg::value_variants() {
            assert_eq!(GranularityArg::from(g.with(1, 64)), g);
        }
        assert_eq!(
            GranularityArg::Group.with(1, 64),
            Granularity::PerGroup { size: 64 }
        );
        assert_eq!(
            CalibrationArg::Percentile.with(99.9),
            Calibration::Percentile(99.9)
        );
        // Every preset the core has is reachable from the command line, spelled as it names it.
        for p in Preset::ALL {
            let arg = PresetArg::from(p);
            let name = arg.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(name.as_deref(), Some(p.name()));
        }
    }
}
