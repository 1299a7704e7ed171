//! The vector forms of the fused quantize + dequantize + measure pass (AVX2 with FMA, and
//! AVX-512), chosen at run time by `tensor`; each gives the bits of the scalar reference
//! (`tensor::run_same`, `tensor::run_consecutive` and `LaneAcc::lane`) for every input.
//!
//! Lane for lane they perform the same IEEE operations in the same order: v = x / S (or
//! x · f32(1/S)), the clamp to one step beyond the code bounds, the 1.5·2^23 rounding and the
//! tie rule's correction, the clamp, x_hat = S · q, then the f64 sums with element j of every
//! block of 8 in lane j (AVX-512 takes two such blocks per step, low half first). One
//! difference in form, none in value: x·x, x_hat·x_hat and x·x_hat are added with a fused
//! multiply-add. Each is a product of two f32 values, exact in f64 (at most 48 significant bits,
//! exponents far inside f64's range), so rounding it before the add changes nothing and the
//! FMA gives the bits of the scalar multiply-then-add. e·e is not exact in general (e = x_hat − x
//! can need more than 26 bits) and keeps a separate multiply and add.
//!
//! The AVX-512 form of a run with one parameter set (`avx512::run_same`) also has a fast
//! path that multiplies by f32(1/S) where the convention divides and rounds with one
//! instruction; it takes a block only where that provably gives the same codes, and sends
//! every other block through the exact operations above.
//!
//! A run's last partial block is padded with zeros and masked out of every count; the padded
//! lanes add +0.0 to sums that are never −0.0 (they start at +0.0, and a sum of two terms is
//! −0.0 only if both are), so they change no bit.

use super::kernel::KernelParams;

/// Where the elements of one run take their parameters from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Run {
    /// Every element uses group `g`.
    Same(usize),
    /// Element k of the run uses group `g + k`.
    Consecutive(usize),
}

/// One run of a chunk: elements `start..end` (relative to the chunk) and their parameters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seg {
    /// First element, relative to the chunk.
    pub start: usize,
    /// One past the last element.
    pub end: usize,
    /// The caller has checked that no finite element of the run is clamped (a per-channel
    /// row whose finite min and max quantize inside the code range: the codes are monotonic
    /// in x). A speed hint for the AVX-512 kernel, which then skips the clamp; every path gives
    /// the same bits whenever it holds.
    pub unclamped: bool,
    /// Where the parameters come from.
    pub run: Run,
}

/// Every group's kernel parameters as columns, so that eight or sixteen consecutive groups
/// load as vectors (per channel along an axis with inner size 1). Empty when no run uses
/// consecutive groups.
#[derive(Debug, Clone, Default)]
pub(super) struct ParamColumns {
    scale: Vec<f32>,
    inv: Vec<f32>,
    zero: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl ParamColumns {
    /// The columns of `kp`.
    pub fn new(kp: &[KernelParams]) -> Self {
        Self {
            scale: kp.iter().map(|k| k.scale).collect(),
            inv: kp.iter().map(|k| k.inv_scale).collect(),
            zero: kp.iter().map(|k| k.zero).collect(),
            lo: kp.iter().map(|k| k.lo).collect(),
            hi: kp.iter().map(|k| k.hi).collect(),
        }
    }

    /// Groups `g..g + len` as five slices, or None when they are not all present.
    fn window(&self, g: usize, len: usize) -> Option<Window<'_>> {
        let r = g..g.checked_add(len)?;
        Some(Window {
            scale: self.scale.get(r.clone())?,
            inv: self.inv.get(r.clone())?,
            zero: self.zero.get(r.clone())?,
            lo: self.lo.get(r.clone())?,
            hi: self.hi.get(r)?,
        })
    }
}

/// The parameters of one run of consecutive groups, one slice per field (all of the run's
/// length).
#[derive(Clone, Copy)]
struct Window<'a> {
    scale: &'a [f32],
    inv: &'a [f32],
    zero: &'a [f32],
    lo: &'a [f32],
    hi: &'a [f32],
}

impl Window<'_> {
    /// `N` parameters of each field from `at` (None past the end), as arrays.
    #[inline(always)]
    fn block<const N: usize>(&self, at: usize) -> Option<[&[f32; N]; 5]> {
        Some([
            array_at(self.scale, at)?,
            array_at(self.inv, at)?,
            array_at(self.zero, at)?,
            array_at(self.lo, at)?,
            array_at(self.hi, at)?,
        ])
    }

    /// The parameters from `at` to the end, padded to `N` lanes with harmless values
    /// (scale 1, bounds 0): the lanes past the end are masked out of every result.
    #[inline(always)]
    fn tail<const N: usize>(&self, at: usize) -> [[f32; N]; 5] {
        let mut out = [[1.0; N], [1.0; N], [0.0; N], [0.0; N], [0.0; N]];
        for (o, s) in out
            .iter_mut()
            .zip([self.scale, self.inv, self.zero, self.lo, self.hi])
        {
            for (d, &v) in o.iter_mut().zip(s.get(at..).unwrap_or(&[])) {
                *d = v;
            }
        }
        out
    }
}

/// `N` values of `s` from `at`, or None past the end.
#[inline(always)]
fn array_at<const N: usize>(s: &[f32], at: usize) -> Option<&[f32; N]> {
    s.get(at..)?.first_chunk::<N>()
}

/// The next output block of `blocks` (taking it off the front), or `scratch` when there is
/// none (that output was not asked for).
#[inline(always)]
fn next_out<'s, 'a: 's, T, const N: usize>(
    blocks: &mut &'a mut [[T; N]],
    scratch: &'s mut [T; N],
) -> &'s mut [T; N] {
    match blocks.split_off_first_mut() {
        Some(b) => b,
        None => scratch,
    }
}

/// `x` (a run's last partial block) padded with zeros to `N` lanes.
#[inline(always)]
fn padded<const N: usize>(x: &[f32]) -> [f32; N] {
    let mut out = [0.0; N];
    for (d, &v) in out.iter_mut().zip(x) {
        *d = v;
    }
    out
}

/// The AVX2 + FMA kernel: blocks of 8 elements, four f64 lanes per register (lanes 0..4 and
/// 4..8 of each sum in two registers).
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    // The whole intrinsic vocabulary of one instruction set; listing forty names adds nothing.
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    use super::super::kernel::{KernelParams, RHAZ, RNE};
    use super::super::metrics::{F32_ABS_MASK, F32_INF_BITS, LANES, LaneAcc};
    use super::{ParamColumns, Run, Seg, Window, next_out, padded};

    /// 1.5 * 2^23, the rounding constant of `kernel::round_small` (same value).
    const MAGIC: f32 = 12_582_912.0;

    /// Blocks between flushes of the i32 count lanes (far below 2^31 per lane).
    const COUNT_FLUSH: usize = 1 << 16;

    /// One block's parameters in eight lanes.
    #[derive(Clone, Copy)]
    struct P8 {
        scale: __m256,
        inv: __m256,
        zero: __m256,
        lo: __m256,
        hi: __m256,
        lo1: __m256,
        hi1: __m256,
    }

    impl P8 {
        /// From five arrays of eight (scale, 1/S, z, lo, hi).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn from_arrays(a: [&[f32; 8]; 5]) -> Self {
            let [scale, inv, zero, lo, hi] = [
                load8(a[0]),
                load8(a[1]),
                load8(a[2]),
                load8(a[3]),
                load8(a[4]),
            ];
            let one = _mm256_set1_ps(1.0);
            Self {
                scale,
                inv,
                zero,
                lo,
                hi,
                // Exact: the bounds are integers of at most 2^16 in magnitude.
                lo1: _mm256_sub_ps(lo, one),
                hi1: _mm256_add_ps(hi, one),
            }
        }

        /// The same parameters in every lane.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn splat(k: &KernelParams) -> Self {
            let a = |v: f32| [v; 8];
            let (s, i, z, l, h) = (a(k.scale), a(k.inv_scale), a(k.zero), a(k.lo), a(k.hi));
            Self::from_arrays([&s, &i, &z, &l, &h])
        }
    }

    /// Eight f32 from an array.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load8(a: &[f32; 8]) -> __m256 {
        // SAFETY: `a` is 8 readable, contiguous f32 (32 bytes); loadu needs no alignment.
        unsafe { _mm256_loadu_ps(a.as_ptr()) }
    }

    /// Four f64 from lanes 0..4 or 4..8 of an accumulator array.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load4(a: &[f64; LANES], hi: bool) -> __m256d {
        let h = a.last_chunk::<4>();
        let l = a.first_chunk::<4>();
        match if hi { h } else { l } {
            // SAFETY: `v` is 4 readable, contiguous f64 (32 bytes); loadu needs no alignment.
            Some(v) => unsafe { _mm256_loadu_pd(v.as_ptr()) },
            None => _mm256_setzero_pd(),
        }
    }

    /// Writes four f64 lanes back to lanes 0..4 or 4..8.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn store4(v: __m256d, a: &mut [f64; LANES], hi: bool) {
        let slot = if hi {
            a.last_chunk_mut::<4>()
        } else {
            a.first_chunk_mut::<4>()
        };
        if let Some(s) = slot {
            // SAFETY: `s` is 4 writable, contiguous f64 (32 bytes); storeu needs no alignment.
            unsafe { _mm256_storeu_pd(s.as_mut_ptr(), v) }
        }
    }

    /// The running sums (two registers per sum: lanes 0..4, 4..8) and the i32 count lanes.
    struct Acc {
        sums: [[__m256d; 2]; 6],
        finite: __m256i,
        nan: __m256i,
        clipped: __m256i,
        /// Blocks counted since the last flush.
        pending: usize,
    }

    impl Acc {
        /// Takes over the sums of `l` (the counts start at zero and are added back by
        /// [`Acc::flush_counts`]).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn load(l: &LaneAcc) -> Self {
            let pair = |a: &[f64; LANES]| [load4(a, false), load4(a, true)];
            Self {
                sums: [
                    pair(&l.e2),
                    pair(&l.abs_e),
                    pair(&l.max_e),
                    pair(&l.x2),
                    pair(&l.xh2),
                    pair(&l.x_xh),
                ],
                finite: _mm256_setzero_si256(),
                nan: _mm256_setzero_si256(),
                clipped: _mm256_setzero_si256(),
                pending: 0,
            }
        }

        /// Writes the sums back to `l` and adds the counts to it.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn store(&mut self, l: &mut LaneAcc) {
            self.flush_counts(l);
            let dst = [
                &mut l.e2,
                &mut l.abs_e,
                &mut l.max_e,
                &mut l.x2,
                &mut l.xh2,
                &mut l.x_xh,
            ];
            for (d, s) in dst.into_iter().zip(self.sums) {
                store4(s[0], d, false);
                store4(s[1], d, true);
            }
        }

        /// Adds the i32 count lanes to the u64 lanes of `l` and clears them.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        fn flush_counts(&mut self, l: &mut LaneAcc) {
            for (c, dst) in [
                (&mut self.finite, &mut l.finite),
                (&mut self.nan, &mut l.nan),
                (&mut self.clipped, &mut l.clipped),
            ] {
                let mut v = [0i32; 8];
                // SAFETY: `v` is 8 writable, contiguous i32 (32 bytes); storeu needs no
                // alignment.
                unsafe { _mm256_storeu_si256(v.as_mut_ptr().cast(), *c) };
                for (slot, n) in dst.iter_mut().zip(v) {
                    // Counts are non-negative and below 2^31.
                    *slot += u64::from(n.unsigned_abs());
                }
                *c = _mm256_setzero_si256();
            }
            self.pending = 0;
        }
    }

    /// Quantizes one block of eight and adds it to the sums; lanes whose `valid` bits are 0 are
    /// left out of every count and add +0.0 to the sums. Returns (round(v) clamped, relative to
    /// z; x_hat) for the outputs.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block<const R: u8, const RECIP: bool>(
        xv: __m256,
        p: &P8,
        valid: __m256i,
        acc: &mut Acc,
    ) -> (__m256, __m256) {
        let magic = _mm256_set1_ps(MAGIC);
        let one = _mm256_set1_ps(1.0);
        // Bit masks: reinterpreting the u32/u64 constants as i32/i64 is the point.
        let abs_i = _mm256_set1_epi32(F32_ABS_MASK as i32);
        let inf_i = _mm256_set1_epi32(F32_INF_BITS as i32);
        let abs_pd = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFF_FFFF_FFFF_FFFF));

        let v = if RECIP {
            _mm256_mul_ps(xv, p.inv)
        } else {
            _mm256_div_ps(xv, p.scale)
        };
        // v.max(lo - 1).min(hi + 1): max_ps returns its second operand for NaN, as f32::max
        // ignores a NaN argument.
        let vc = _mm256_min_ps(_mm256_max_ps(v, p.lo1), p.hi1);
        let r0 = _mm256_sub_ps(_mm256_add_ps(vc, magic), magic);
        let r = if R == RNE {
            r0
        } else {
            let d = _mm256_sub_ps(vc, r0);
            let up = _mm256_cmp_ps::<_CMP_EQ_OQ>(d, _mm256_set1_ps(0.5));
            if R == RHAZ {
                let zero = _mm256_setzero_ps();
                let up = _mm256_and_ps(up, _mm256_cmp_ps::<_CMP_GT_OQ>(vc, zero));
                let down = _mm256_and_ps(
                    _mm256_cmp_ps::<_CMP_EQ_OQ>(d, _mm256_set1_ps(-0.5)),
                    _mm256_cmp_ps::<_CMP_LT_OQ>(vc, zero),
                );
                _mm256_sub_ps(
                    _mm256_add_ps(r0, _mm256_and_ps(up, one)),
                    _mm256_and_ps(down, one),
                )
            } else {
                _mm256_add_ps(r0, _mm256_and_ps(up, one))
            }
        };
        let rq = _mm256_min_ps(_mm256_max_ps(r, p.lo), p.hi);
        // r is never NaN (vc is not), so "clamped" is exactly r != clamp(r).
        let clipped = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_NEQ_OQ>(r, rq));
        let xh = _mm256_mul_ps(p.scale, rq);

        let abs_bits = _mm256_and_si256(_mm256_castps_si256(xv), abs_i);
        let finite = _mm256_and_si256(_mm256_cmpgt_epi32(inf_i, abs_bits), valid);
        // Padded lanes hold 0, never NaN.
        let is_nan = _mm256_cmpgt_epi32(abs_bits, inf_i);
        let fm = _mm256_castsi256_ps(finite);
        let xf = _mm256_and_ps(xv, fm);
        let hf = _mm256_and_ps(xh, fm);
        let xd = [
            _mm256_cvtps_pd(_mm256_castps256_ps128(xf)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(xf)),
        ];
        let hd = [
            _mm256_cvtps_pd(_mm256_castps256_ps128(hf)),
            _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(hf)),
        ];
        let [e2, abs_e, max_e, x2, xh2, x_xh] = &mut acc.sums;
        for h in 0..2 {
            let e = _mm256_sub_pd(hd[h], xd[h]);
            let ae = _mm256_and_pd(e, abs_pd);
            e2[h] = _mm256_add_pd(e2[h], _mm256_mul_pd(e, e));
            abs_e[h] = _mm256_add_pd(abs_e[h], ae);
            // `if ae > m { ae } else { m }`: max_pd returns its second operand unless ae > m.
            max_e[h] = _mm256_max_pd(ae, max_e[h]);
            // Exact products: the FMA rounds once, as the scalar add does (module doc).
            x2[h] = _mm256_fmadd_pd(xd[h], xd[h], x2[h]);
            xh2[h] = _mm256_fmadd_pd(hd[h], hd[h], xh2[h]);
            x_xh[h] = _mm256_fmadd_pd(xd[h], hd[h], x_xh[h]);
        }
        acc.finite = _mm256_sub_epi32(acc.finite, finite);
        acc.nan = _mm256_sub_epi32(acc.nan, is_nan);
        acc.clipped = _mm256_sub_epi32(acc.clipped, _mm256_and_si256(clipped, finite));
        (rq, xh)
    }

    /// Stores the outputs of one block: codes (NaN gets z) and dequantized values (NaN stays
    /// the canonical NaN, as the scalar path writes `f32::NAN`).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn outputs<const CODES: bool, const DEQ: bool>(
        xv: __m256,
        p: &P8,
        (rq, xh): (__m256, __m256),
        codes: &mut [i32; 8],
        deq: &mut [f32; 8],
    ) {
        let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(xv, xv);
        if CODES {
            // off + z is an exact integer within the code range: the conversion is exact.
            let off = _mm256_andnot_ps(nan, rq);
            let c = _mm256_cvttps_epi32(_mm256_add_ps(off, p.zero));
            // SAFETY: `codes` is 8 writable, contiguous i32 (32 bytes); storeu needs no
            // alignment.
            unsafe { _mm256_storeu_si256(codes.as_mut_ptr().cast(), c) };
        }
        if DEQ {
            let d = _mm256_blendv_ps(xh, _mm256_set1_ps(f32::NAN), nan);
            // SAFETY: `deq` is 8 writable, contiguous f32 (32 bytes); storeu needs no
            // alignment.
            unsafe { _mm256_storeu_ps(deq.as_mut_ptr(), d) };
        }
    }

    /// One run: whole blocks, then the last partial block padded and masked. `win` holds the
    /// run's parameters when `CONSEC` (element k uses `win[k]`), else every element uses
    /// `same`. `codes` and `deq` have the run's length when asked for.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn run<
        const R: u8,
        const RECIP: bool,
        const CODES: bool,
        const DEQ: bool,
        const CONSEC: bool,
    >(
        x: &[f32],
        same: &P8,
        win: Option<Window<'_>>,
        codes: &mut [i32],
        deq: &mut [f32],
        acc: &mut Acc,
        lanes: &mut LaneAcc,
    ) {
        let all = _mm256_set1_epi32(-1);
        let (blocks, tail) = x.as_chunks::<8>();
        let (mut cb, ct) = codes.as_chunks_mut::<8>();
        let (mut db, dt) = deq.as_chunks_mut::<8>();
        let (mut scratch_c, mut scratch_d) = ([0i32; 8], [0f32; 8]);
        for (b, x8) in blocks.iter().enumerate() {
            let p = if CONSEC {
                match win.as_ref().and_then(|w| w.block::<8>(b * 8)) {
                    Some(a) => P8::from_arrays(a),
                    None => *same,
                }
            } else {
                *same
            };
            let xv = load8(x8);
            let out = block::<R, RECIP>(xv, &p, all, acc);
            if CODES || DEQ {
                let c8 = next_out(&mut cb, &mut scratch_c);
                let d8 = next_out(&mut db, &mut scratch_d);
                outputs::<CODES, DEQ>(xv, &p, out, c8, d8);
            }
            acc.pending += 1;
            if acc.pending >= COUNT_FLUSH {
                acc.flush_counts(lanes);
            }
        }
        if tail.is_empty() {
            return;
        }
        let at = blocks.len() * 8;
        let p = match (CONSEC, &win) {
            (true, Some(w)) => {
                let t = w.tail::<8>(at);
                P8::from_arrays([&t[0], &t[1], &t[2], &t[3], &t[4]])
            }
            _ => *same,
        };
        let xv = load8(&padded::<8>(tail));
        // Lane j is valid when j < tail length (at most 7: the cast is exact).
        let valid = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(tail.len() as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        let out = block::<R, RECIP>(xv, &p, valid, acc);
        if CODES || DEQ {
            outputs::<CODES, DEQ>(xv, &p, out, &mut scratch_c, &mut scratch_d);
            if CODES {
                for (d, &s) in ct.iter_mut().zip(&scratch_c) {
                    *d = s;
                }
            }
            if DEQ {
                for (d, &s) in dt.iter_mut().zip(&scratch_d) {
                    *d = s;
                }
            }
        }
        acc.pending += 1;
    }

    /// Quantizes, dequantizes and measures the runs `segs` of the chunk `x` into `lanes`,
    /// writing codes and dequantized values (chunk-relative, like the runs) when `CODES` /
    /// `DEQ`. `cols` holds the parameters of consecutive-group runs.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(in super::super) fn segs<
        const R: u8,
        const RECIP: bool,
        const CODES: bool,
        const DEQ: bool,
    >(
        x: &[f32],
        segs: &[Seg],
        kp: &[KernelParams],
        cols: &ParamColumns,
        codes: &mut [i32],
        deq: &mut [f32],
        lanes: &mut LaneAcc,
    ) {
        let mut acc = Acc::load(lanes);
        for s in segs {
            let Some(xs) = x.get(s.start..s.end) else {
                continue;
            };
            let cs = if CODES {
                codes.get_mut(s.start..s.end).unwrap_or_default()
            } else {
                &mut []
            };
            let ds = if DEQ {
                deq.get_mut(s.start..s.end).unwrap_or_default()
            } else {
                &mut []
            };
            match s.run {
                Run::Same(g) => {
                    let Some(k) = kp.get(g) else { continue };
                    let p = P8::splat(k);
                    run::<R, RECIP, CODES, DEQ, false>(xs, &p, None, cs, ds, &mut acc, lanes);
                }
                Run::Consecutive(g) => {
                    let (Some(win), Some(k)) = (cols.window(g, xs.len()), kp.get(g)) else {
                        continue;
                    };
                    let p = P8::splat(k);
                    run::<R, RECIP, CODES, DEQ, true>(xs, &p, Some(win), cs, ds, &mut acc, lanes);
                }
            }
            // usize fits in u64.
            lanes.seen += xs.len() as u64;
        }
        acc.store(lanes);
    }
}

/// The AVX-512 kernel: blocks of 16 elements (two blocks of 8 of the scalar order, the low
/// half first), eight f64 lanes per register, masks in mask registers.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    // The whole intrinsic vocabulary of one instruction set; listing forty names adds nothing.
    #[allow(clippy::wildcard_imports)]
    use std::arch::x86_64::*;

    use super::super::kernel::{KernelParams, RHAZ, RNE};
    use super::super::metrics::{F32_ABS_MASK, F32_INF_BITS, LANES, LaneAcc};
    use super::{ParamColumns, Run, Seg, Window, next_out, padded};

    /// 1.5 * 2^23, the rounding constant of `kernel::round_small` (same value).
    const MAGIC: f32 = 12_582_912.0;

    /// Blocks between flushes of the i32 count lanes (far below 2^31 per lane).
    const COUNT_FLUSH: usize = 1 << 16;

    /// One block's parameters in sixteen lanes.
    #[derive(Clone, Copy)]
    struct P16 {
        scale: __m512,
        inv: __m512,
        zero: __m512,
        lo: __m512,
        hi: __m512,
        lo1: __m512,
        hi1: __m512,
    }

    impl P16 {
        /// From five arrays of sixteen (scale, 1/S, z, lo, hi).
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn from_arrays(a: [&[f32; 16]; 5]) -> Self {
            let [scale, inv, zero, lo, hi] = [
                load16(a[0]),
                load16(a[1]),
                load16(a[2]),
                load16(a[3]),
                load16(a[4]),
            ];
            let one = _mm512_set1_ps(1.0);
            Self {
                scale,
                inv,
                zero,
                lo,
                hi,
                // Exact: the bounds are integers of at most 2^16 in magnitude.
                lo1: _mm512_sub_ps(lo, one),
                hi1: _mm512_add_ps(hi, one),
            }
        }

        /// The same parameters in every lane.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn splat(k: &KernelParams) -> Self {
            let a = |v: f32| [v; 16];
            let (s, i, z, l, h) = (a(k.scale), a(k.inv_scale), a(k.zero), a(k.lo), a(k.hi));
            Self::from_arrays([&s, &i, &z, &l, &h])
        }
    }

    /// Sixteen f32 from an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load16(a: &[f32; 16]) -> __m512 {
        // SAFETY: `a` is 16 readable, contiguous f32 (64 bytes); loadu needs no alignment.
        unsafe { _mm512_loadu_ps(a.as_ptr()) }
    }

    /// The running sums (one register of eight lanes per sum) and the i32 count lanes
    /// (lane j and j + 8 both count for lane j).
    struct Acc {
        sums: [__m512d; 6],
        finite: __m512i,
        nan: __m512i,
        clipped: __m512i,
        /// Blocks counted since the last flush.
        pending: usize,
    }

    impl Acc {
        /// Takes over the sums of `l` (the counts start at zero and are added back by
        /// [`Acc::flush_counts`]).
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn load(l: &LaneAcc) -> Self {
            // SAFETY: each array is LANES = 8 readable, contiguous f64 (64 bytes); loadu
            // needs no alignment.
            let ld = |a: &[f64; LANES]| unsafe { _mm512_loadu_pd(a.as_ptr()) };
            Self {
                sums: [
                    ld(&l.e2),
                    ld(&l.abs_e),
                    ld(&l.max_e),
                    ld(&l.x2),
                    ld(&l.xh2),
                    ld(&l.x_xh),
                ],
                finite: _mm512_setzero_si512(),
                nan: _mm512_setzero_si512(),
                clipped: _mm512_setzero_si512(),
                pending: 0,
            }
        }

        /// Writes the sums back to `l` and adds the counts to it.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn store(&mut self, l: &mut LaneAcc) {
            self.flush_counts(l);
            let dst = [
                &mut l.e2,
                &mut l.abs_e,
                &mut l.max_e,
                &mut l.x2,
                &mut l.xh2,
                &mut l.x_xh,
            ];
            for (d, s) in dst.into_iter().zip(self.sums) {
                // SAFETY: `d` is LANES = 8 writable, contiguous f64 (64 bytes); storeu needs
                // no alignment.
                unsafe { _mm512_storeu_pd(d.as_mut_ptr(), s) };
            }
        }

        /// Adds the i32 count lanes to the u64 lanes of `l` and clears them.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn flush_counts(&mut self, l: &mut LaneAcc) {
            for (c, dst) in [
                (&mut self.finite, &mut l.finite),
                (&mut self.nan, &mut l.nan),
                (&mut self.clipped, &mut l.clipped),
            ] {
                let mut v = [0i32; 16];
                // SAFETY: `v` is 16 writable, contiguous i32 (64 bytes); storeu needs no
                // alignment.
                unsafe { _mm512_storeu_epi32(v.as_mut_ptr(), *c) };
                let (a, b) = v.split_at(LANES);
                for ((slot, &n), &m) in dst.iter_mut().zip(a).zip(b) {
                    // Counts are non-negative and below 2^31.
                    *slot += u64::from(n.unsigned_abs()) + u64::from(m.unsigned_abs());
                }
                *c = _mm512_setzero_si512();
            }
            self.pending = 0;
        }
    }

    /// The low eight lanes of `v` as f64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn low_pd(v: __m512) -> __m512d {
        _mm512_cvtps_pd(_mm512_castps512_ps256(v))
    }

    /// The high eight lanes of `v` as f64 (one in-register shuffle brings them down).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn high_pd(v: __m512) -> __m512d {
        _mm512_cvtps_pd(_mm512_castps512_ps256(
            _mm512_shuffle_f32x4::<0b11_10_11_10>(v, v),
        ))
    }

    /// The low and high eight lanes of `v`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn halves(v: __m512) -> [__m256; 2] {
        [
            _mm512_castps512_ps256(v),
            _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
        ]
    }

    /// round(v) of every lane before and after the clamp to the code bounds (relative to z):
    /// lane for lane the operations of the scalar `kernel::code_offset`, without its NaN rule
    /// (the callers mask NaN lanes). r is never NaN.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn offsets<const R: u8, const RECIP: bool>(xv: __m512, p: &P16) -> (__m512, __m512) {
        let magic = _mm512_set1_ps(MAGIC);
        let one = _mm512_set1_ps(1.0);
        let v = if RECIP {
            _mm512_mul_ps(xv, p.inv)
        } else {
            _mm512_div_ps(xv, p.scale)
        };
        // v.max(lo - 1).min(hi + 1): max_ps returns its second operand for NaN, as f32::max
        // ignores a NaN argument.
        let vc = _mm512_min_ps(_mm512_max_ps(v, p.lo1), p.hi1);
        let r0 = _mm512_sub_ps(_mm512_add_ps(vc, magic), magic);
        // r0 is never -0.0 ((vc + M) - M is +0.0 when zero), so a masked-off "+ 1" lane
        // keeps the bits the AVX2 and scalar forms get by adding 0.0.
        let r = if R == RNE {
            r0
        } else {
            let d = _mm512_sub_ps(vc, r0);
            let up = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(d, _mm512_set1_ps(0.5));
            if R == RHAZ {
                let zero = _mm512_setzero_ps();
                let up = up & _mm512_cmp_ps_mask::<_CMP_GT_OQ>(vc, zero);
                let down = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(d, _mm512_set1_ps(-0.5))
                    & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(vc, zero);
                let t = _mm512_mask_add_ps(r0, up, r0, one);
                _mm512_mask_sub_ps(t, down, t, one)
            } else {
                _mm512_mask_add_ps(r0, up, r0, one)
            }
        };
        let rq = _mm512_min_ps(_mm512_max_ps(r, p.lo), p.hi);
        (r, rq)
    }

    /// Quantizes one block of sixteen and adds it to the sums (elements 0..8, then 8..16);
    /// lanes outside `valid` are left out of every count and add +0.0 to the sums. Returns
    /// (round(v) clamped, relative to z; x_hat) for the outputs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn block<const R: u8, const RECIP: bool>(
        xv: __m512,
        p: &P16,
        valid: __mmask16,
        acc: &mut Acc,
    ) -> (__m512, __m512) {
        // Bit masks: reinterpreting the u32 constants as i32 is the point.
        let abs_i = _mm512_set1_epi32(F32_ABS_MASK as i32);
        let inf_i = _mm512_set1_epi32(F32_INF_BITS as i32);

        let (r, rq) = offsets::<R, RECIP>(xv, p);
        // r is never NaN (vc is not), so "clamped" is exactly r != clamp(r).
        let clipped = _mm512_cmp_ps_mask::<_CMP_NEQ_OQ>(r, rq);
        let xh = _mm512_mul_ps(p.scale, rq);

        let abs_bits = _mm512_and_si512(_mm512_castps_si512(xv), abs_i);
        let finite = _mm512_cmplt_epi32_mask(abs_bits, inf_i) & valid;
        // Padded lanes hold 0, never NaN.
        let is_nan = _mm512_cmpgt_epi32_mask(abs_bits, inf_i);
        let [x_lo, x_hi] = halves(xv);
        let [h_lo, h_hi] = halves(xh);
        // Non-finite lanes convert to +0.0, as the scalar form's `if finite { x } else { 0.0 }`.
        // The truncations pick the mask bits of each half.
        let parts = [
            (finite as u8, x_lo, h_lo),
            ((finite >> 8) as u8, x_hi, h_hi),
        ];
        let [e2, abs_e, max_e, x2, xh2, x_xh] = &mut acc.sums;
        for (k, xs, hs) in parts {
            let xd = _mm512_maskz_cvtps_pd(k, xs);
            let hd = _mm512_maskz_cvtps_pd(k, hs);
            let e = _mm512_sub_pd(hd, xd);
            let ae = _mm512_abs_pd(e);
            *e2 = _mm512_add_pd(*e2, _mm512_mul_pd(e, e));
            *abs_e = _mm512_add_pd(*abs_e, ae);
            // `if ae > m { ae } else { m }`: max_pd returns its second operand unless ae > m.
            *max_e = _mm512_max_pd(ae, *max_e);
            // Exact products: the FMA rounds once, as the scalar add does (module doc).
            *x2 = _mm512_fmadd_pd(xd, xd, *x2);
            *xh2 = _mm512_fmadd_pd(hd, hd, *xh2);
            *x_xh = _mm512_fmadd_pd(xd, hd, *x_xh);
        }
        let ones = _mm512_set1_epi32(1);
        acc.finite = _mm512_mask_add_epi32(acc.finite, finite, acc.finite, ones);
        acc.nan = _mm512_mask_add_epi32(acc.nan, is_nan, acc.nan, ones);
        acc.clipped = _mm512_mask_add_epi32(acc.clipped, clipped & finite, acc.clipped, ones);
        (rq, xh)
    }

    /// Stores the outputs of one block: codes (NaN gets z) and dequantized values (NaN stays
    /// the canonical NaN, as the scalar path writes `f32::NAN`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn outputs<const CODES: bool, const DEQ: bool>(
        xv: __m512,
        p: &P16,
        (rq, xh): (__m512, __m512),
        codes: &mut [i32; 16],
        deq: &mut [f32; 16],
    ) {
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(xv, xv);
        if CODES {
            // off + z is an exact integer within the code range: the conversion is exact.
            let off = _mm512_maskz_mov_ps(!nan, rq);
            let c = _mm512_cvttps_epi32(_mm512_add_ps(off, p.zero));
            // SAFETY: `codes` is 16 writable, contiguous i32 (64 bytes); storeu needs no
            // alignment.
            unsafe { _mm512_storeu_epi32(codes.as_mut_ptr(), c) };
        }
        if DEQ {
            let d = _mm512_mask_blend_ps(nan, xh, _mm512_set1_ps(f32::NAN));
            // SAFETY: `deq` is 16 writable, contiguous f32 (64 bytes); storeu needs no
            // alignment.
            unsafe { _mm512_storeu_ps(deq.as_mut_ptr(), d) };
        }
    }

    /// How far ahead of the block in hand [`run_same`] prefetches: 16 KiB.
    const PREFETCH: usize = 4096;

    /// Whether [`run_same`] may take its fast path for parameters `k`: S and f32(1/S) normal,
    /// so that x · f32(1/S) is within 3 · 2^-24 · |v| of x / S (see [`run_same`]).
    fn fast_ok(k: &KernelParams) -> bool {
        k.scale.is_normal() && k.inv_scale.is_normal()
    }

    /// One run whose elements all use `k` (per tensor, per group, a per-channel row): the
    /// same bits as [`run`], faster.
    ///
    /// Each block of sixteen first takes a fast path: v' = x · f32(1/S), r = round(v') to
    /// nearest even (one `vrndscaleps`), r clamped to the code bounds (unless the caller knows
    /// nothing finite is clamped: `unclamped`), x_hat = S · r (a fused multiply-add with +0.0,
    /// which turns the −0.0 a small negative v' rounds to into the +0.0 of the scalar form's
    /// rounding and otherwise rounds S · r once, as the multiply does). It stands only when
    /// every lane is finite, unclamped and decided:
    /// - a clamped lane, an infinity or a NaN fails r = clamp(r) (an ordered compare); without
    ///   the clamp, an infinity or a NaN fails the next test (v' − r is NaN);
    /// - where the convention divides or its tie rule is not to-even, v' may differ from the
    ///   reference v. Both are within 3 · 2^-24 · |v| of x / S (f32(1/S) carries a relative
    ///   error below 2^-24, each rounding another), and an unclamped lane has |v'| < B =
    ///   max(|lo|, |hi|) + 1. So when |v' − r| < 0.5 − B · 2^-21 (exact in f32), v' is
    ///   farther from every half-integer than v is from v': both round to the same integer
    ///   under any tie rule and neither is a tie. A lane nearer a half-integer sends the block
    ///   to the exact path (random int8 data: about one block in 250; wide codes, more).
    ///   Where v' is v (multiply) but the tie rule is not to-even, exact ties alone do.
    ///
    /// Any other block takes [`block`], the exact form, with the same accumulators. The sums
    /// then see the same values in the same lanes and order as the scalar form; the finite
    /// count is kept as a number of fast blocks and added to the lanes at the end. The
    /// accumulators live in registers for the whole run.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn run_same<const R: u8, const RECIP: bool, const CODES: bool, const DEQ: bool>(
        x: &[f32],
        k: &KernelParams,
        unclamped: bool,
        codes: &mut [i32],
        deq: &mut [f32],
        acc: &mut Acc,
        lanes: &mut LaneAcc,
    ) {
        let p = P16::splat(k);
        if !fast_ok(k) {
            run::<R, RECIP, CODES, DEQ, false>(x, &p, None, codes, deq, acc, lanes);
            return;
        }
        let (blocks, tail) = x.as_chunks::<16>();
        let at = blocks.len() * 16;
        let (c_head, c_tail) = codes.split_at_mut(at.min(codes.len()));
        let (d_head, d_tail) = deq.split_at_mut(at.min(deq.len()));
        let outs = (
            c_head.as_chunks_mut::<16>().0,
            d_head.as_chunks_mut::<16>().0,
        );
        // The undecided-lane test (doc above): none where v' is the reference v and the tie
        // rule is to-even; exact ties alone where v' = v under another tie rule; where the
        // convention divides, a margin of B · 2^-21 ≥ |v'| · 2^-21 on |v' − r|, B bounding
        // |v'| on every unclamped lane (wide codes flag more lanes, never a wrong one).
        let bound = k.lo.abs().max(k.hi.abs()) + 1.0;
        // Exact: `bound` is an integer of at most 2^16 + 1, 2^-21 a power of two, and the
        // difference needs at most 21 bits.
        let thr = if RECIP {
            0.5
        } else {
            0.5 - bound / 2_097_152.0
        };
        // Without the clamp a non-finite lane still fails the undecided-lane test (its
        // v' − r is NaN), which the to-even reciprocal conventions do not run.
        let fast_blocks = if unclamped && !(RECIP && R == RNE) {
            run_same_blocks::<R, RECIP, CODES, DEQ, false>(blocks, &p, thr, outs, acc, lanes)
        } else {
            run_same_blocks::<R, RECIP, CODES, DEQ, true>(blocks, &p, thr, outs, acc, lanes)
        };
        // Each fast block adds two finite elements to every lane (elements j and j + 8).
        for f in &mut lanes.finite {
            *f += 2 * fast_blocks;
        }
        if !tail.is_empty() {
            run::<R, RECIP, CODES, DEQ, false>(tail, &p, None, c_tail, d_tail, acc, lanes);
        }
    }

    /// The whole blocks of [`run_same`], with the clamp (`CLAMP`) or without it (the caller
    /// knows no finite element is clamped); `thr` bounds |v' − r| on the fast path. Returns
    /// the number of blocks that took the fast path.
    #[allow(clippy::type_complexity)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn run_same_blocks<
        const R: u8,
        const RECIP: bool,
        const CODES: bool,
        const DEQ: bool,
        const CLAMP: bool,
    >(
        blocks: &[[f32; 16]],
        p: &P16,
        thr: f32,
        (mut cb, mut db): (&mut [[i32; 16]], &mut [[f32; 16]]),
        acc: &mut Acc,
        lanes: &mut LaneAcc,
    ) -> u64 {
        let (mut scratch_c, mut scratch_d) = ([0i32; 16], [0f32; 16]);
        let thr = _mm512_set1_ps(thr);
        let zero = _mm512_setzero_ps();
        let mut fast_blocks = 0u64;
        // The sums as separate locals, so that they stay in registers; the exact path
        // borrows them as an `Acc` for one block.
        let [mut e2, mut abs_e, mut max_e, mut x2, mut xh2, mut x_xh] = acc.sums;
        for x16 in blocks {
            // The line PREFETCH elements ahead (the next row of a per-channel pass, whose
            // min/max is read next) is on its way while this one computes. A prefetch never
            // faults, so running past the end of `x` is harmless.
            _mm_prefetch::<_MM_HINT_T0>(x16.as_ptr().wrapping_add(PREFETCH).cast());
            let xv = load16(x16);
            let v = _mm512_mul_ps(xv, p.inv);
            let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            let (rq, good) = if CLAMP {
                let rq = _mm512_min_ps(_mm512_max_ps(r, p.lo), p.hi);
                // Ordered equality: false for a clamped lane, an infinity and a NaN.
                let kept = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(r, rq);
                if RECIP && R == RNE {
                    (rq, kept)
                } else {
                    let d = _mm512_abs_ps(_mm512_sub_ps(v, r));
                    (rq, _mm512_mask_cmp_ps_mask::<_CMP_LT_OQ>(kept, d, thr))
                }
            } else {
                let d = _mm512_abs_ps(_mm512_sub_ps(v, r));
                (r, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, thr))
            };
            let out = if good == u16::MAX {
                let xh = _mm512_fmadd_ps(p.scale, rq, zero);
                let (x_lo, x_hi) = (low_pd(xv), high_pd(xv));
                let (h_lo, h_hi) = (low_pd(xh), high_pd(xh));
                for (xd, hd) in [(x_lo, h_lo), (x_hi, h_hi)] {
                    let e = _mm512_sub_pd(hd, xd);
                    let ae = _mm512_abs_pd(e);
                    // e · e is exact here, so the FMA gives the multiply-then-add's bits:
                    // x_hat = +0.0 makes e = −x; otherwise x and x_hat have one sign and are
                    // within a factor of two of each other (|x − x_hat| ≤ S/2 and a non-zero
                    // code puts |x_hat| ≥ S, x_hat = S · r rounded once), so e spans at most
                    // 26 bits and its square at most 52.
                    e2 = _mm512_fmadd_pd(e, e, e2);
                    abs_e = _mm512_add_pd(abs_e, ae);
                    max_e = _mm512_max_pd(ae, max_e);
                    x2 = _mm512_fmadd_pd(xd, xd, x2);
                    xh2 = _mm512_fmadd_pd(hd, hd, xh2);
                    x_xh = _mm512_fmadd_pd(xd, hd, x_xh);
                }
                fast_blocks += 1;
                (rq, xh)
            } else {
                acc.sums = [e2, abs_e, max_e, x2, xh2, x_xh];
                let out = block::<R, RECIP>(xv, p, u16::MAX, acc);
                [e2, abs_e, max_e, x2, xh2, x_xh] = acc.sums;
                acc.pending += 1;
                if acc.pending >= COUNT_FLUSH {
                    acc.flush_counts(lanes);
                }
                out
            };
            if CODES || DEQ {
                let c16 = next_out(&mut cb, &mut scratch_c);
                let d16 = next_out(&mut db, &mut scratch_d);
                outputs::<CODES, DEQ>(xv, p, out, c16, d16);
            }
        }
        acc.sums = [e2, abs_e, max_e, x2, xh2, x_xh];
        fast_blocks
    }

    /// One run: whole blocks of 16, then the last partial block padded and masked. `win`
    /// holds the run's parameters when `CONSEC`, else every element uses `same`. `codes` and
    /// `deq` have the run's length when asked for.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn run<
        const R: u8,
        const RECIP: bool,
        const CODES: bool,
        const DEQ: bool,
        const CONSEC: bool,
    >(
        x: &[f32],
        same: &P16,
        win: Option<Window<'_>>,
        codes: &mut [i32],
        deq: &mut [f32],
        acc: &mut Acc,
        lanes: &mut LaneAcc,
    ) {
        let (blocks, tail) = x.as_chunks::<16>();
        let (mut cb, ct) = codes.as_chunks_mut::<16>();
        let (mut db, dt) = deq.as_chunks_mut::<16>();
        let (mut scratch_c, mut scratch_d) = ([0i32; 16], [0f32; 16]);
        for (b, x16) in blocks.iter().enumerate() {
            let p = if CONSEC {
                match win.as_ref().and_then(|w| w.block::<16>(b * 16)) {
                    Some(a) => P16::from_arrays(a),
                    None => *same,
                }
            } else {
                *same
            };
            let xv = load16(x16);
            let out = block::<R, RECIP>(xv, &p, u16::MAX, acc);
            if CODES || DEQ {
                let c16 = next_out(&mut cb, &mut scratch_c);
                let d16 = next_out(&mut db, &mut scratch_d);
                outputs::<CODES, DEQ>(xv, &p, out, c16, d16);
            }
            acc.pending += 1;
            if acc.pending >= COUNT_FLUSH {
                acc.flush_counts(lanes);
            }
        }
        if tail.is_empty() {
            return;
        }
        let at = blocks.len() * 16;
        let p = match (CONSEC, &win) {
            (true, Some(w)) => {
                let t = w.tail::<16>(at);
                P16::from_arrays([&t[0], &t[1], &t[2], &t[3], &t[4]])
            }
            _ => *same,
        };
        let xv = load16(&padded::<16>(tail));
        // The first tail.len() (< 16) lanes are valid.
        let valid = (1u16 << tail.len()) - 1;
        let out = block::<R, RECIP>(xv, &p, valid, acc);
        if CODES || DEQ {
            outputs::<CODES, DEQ>(xv, &p, out, &mut scratch_c, &mut scratch_d);
            if CODES {
                for (d, &s) in ct.iter_mut().zip(&scratch_c) {
                    *d = s;
                }
            }
            if DEQ {
                for (d, &s) in dt.iter_mut().zip(&scratch_d) {
                    *d = s;
                }
            }
        }
        acc.pending += 1;
    }

    /// Quantizes, dequantizes and measures the runs `segs` of the chunk `x` into `lanes`,
    /// writing codes and dequantized values (chunk-relative, like the runs) when `CODES` /
    /// `DEQ`. `cols` holds the parameters of consecutive-group runs.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(in super::super) fn segs<
        const R: u8,
        const RECIP: bool,
        const CODES: bool,
        const DEQ: bool,
    >(
        x: &[f32],
        segs: &[Seg],
        kp: &[KernelParams],
        cols: &ParamColumns,
        codes: &mut [i32],
        deq: &mut [f32],
        lanes: &mut LaneAcc,
    ) {
        let mut acc = Acc::load(lanes);
        for s in segs {
            let Some(xs) = x.get(s.start..s.end) else {
                continue;
            };
            let cs = if CODES {
                codes.get_mut(s.start..s.end).unwrap_or_default()
            } else {
                &mut []
            };
            let ds = if DEQ {
                deq.get_mut(s.start..s.end).unwrap_or_default()
            } else {
                &mut []
            };
            match s.run {
                Run::Same(g) => {
                    let Some(k) = kp.get(g) else { continue };
                    run_same::<R, RECIP, CODES, DEQ>(xs, k, s.unclamped, cs, ds, &mut acc, lanes);
                }
                Run::Consecutive(g) => {
                    let (Some(win), Some(k)) = (cols.window(g, xs.len()), kp.get(g)) else {
                        continue;
                    };
                    let p = P16::splat(k);
                    run::<R, RECIP, CODES, DEQ, true>(xs, &p, Some(win), cs, ds, &mut acc, lanes);
                }
            }
            // usize fits in u64.
            lanes.seen += xs.len() as u64;
        }
        acc.store(lanes);
    }

    /// round(x / S) clamped, relative to z, for sixteen parameter sets by `run_same`'s fast
    /// path (x · f32(1/S), one rounding instruction, the clamp), or None when a lane is
    /// undecided (|v' − r| ≥ `thr`, or NaN): then only the exact [`offsets`] gives the
    /// reference's codes. Where it answers, it answers the same (see `run_same`); a clamped
    /// lane is clamped either way (|v'| > B puts v past the bound's half-step as well).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn fast_offset<const R: u8, const RECIP: bool>(
        xv: __m512,
        p: &P16,
        thr: __m512,
    ) -> Option<__m512> {
        let v = _mm512_mul_ps(xv, p.inv);
        let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
        if !(RECIP && R == RNE) {
            let d = _mm512_abs_ps(_mm512_sub_ps(v, r));
            if _mm512_cmp_ps_mask::<_CMP_LT_OQ>(d, thr) != u16::MAX {
                return None;
            }
        } else if _mm512_cmp_ps_mask::<_CMP_ORD_Q>(r, r) != u16::MAX {
            return None;
        }
        Some(_mm512_min_ps(_mm512_max_ps(r, p.lo), p.hi))
    }

    /// Candidates per register.
    const CANDS: usize = 16;

    /// `calib::sse_of` with every candidate in a lane of its own: for each candidate k, the
    /// squared errors (f64(S_k · offset_k(x)) − f64(x))² of the finite values of `x` summed
    /// from +0.0 in element order, then added to `out[k]`. Per candidate these are the scalar
    /// form's operations in its order (a separate multiply and add: e·e is not exact), so
    /// `out` gets its bits. Up to `G` registers of sixteen candidates run side by side to
    /// keep the adds' latency hidden; lanes past the last candidate are padded and dropped.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sse_group<const R: u8, const RECIP: bool, const G: usize>(
        x: &[f32],
        cands: &[KernelParams],
        out: &mut [f64],
    ) {
        let mut cols = [[[1.0f32; CANDS]; 5]; G];
        for (k, c) in cands.iter().enumerate().take(G * CANDS) {
            let (reg, lane) = (k / CANDS, k % CANDS);
            if let Some(col) = cols.get_mut(reg) {
                for (field, v) in col
                    .iter_mut()
                    .zip([c.scale, c.inv_scale, c.zero, c.lo, c.hi])
                {
                    if let Some(slot) = field.get_mut(lane) {
                        *slot = v;
                    }
                }
            }
        }
        let p: [P16; G] = std::array::from_fn(|g| {
            let c = cols.get(g).copied().unwrap_or([[1.0; CANDS]; 5]);
            P16::from_arrays([&c[0], &c[1], &c[2], &c[3], &c[4]])
        });
        // The fast path of `run_same` per register: its threshold on |v' − r| for each
        // candidate (B · 2^-21 below 0.5, B = max(|lo|, |hi|) + 1, exact in f32), and whether
        // every candidate's S and f32(1/S) are normal (else the register always divides).
        let thr: [__m512; G] = std::array::from_fn(|g| {
            let c = cols.get(g).copied().unwrap_or([[1.0; CANDS]; 5]);
            let t: [f32; CANDS] = std::array::from_fn(|k| {
                let bound = c[3][k].abs().max(c[4][k].abs()) + 1.0;
                if RECIP {
                    0.5
                } else {
                    0.5 - bound / 2_097_152.0
                }
            });
            load16(&t)
        });
        let fast: [bool; G] = std::array::from_fn(|g| {
            cols.get(g)
                .is_some_and(|c| c[0].iter().chain(&c[1]).all(|v| v.is_normal()))
        });
        let mut acc = [[_mm512_setzero_pd(); 2]; G];
        for &v in x {
            // The scalar form skips non-finite values; skipping them here is the same.
            if !v.is_finite() {
                continue;
            }
            let xv = _mm512_set1_ps(v);
            let xd = _mm512_set1_pd(f64::from(v));
            for (((pg, ag), &tg), &fg) in p.iter().zip(acc.iter_mut()).zip(&thr).zip(&fast) {
                let rq = if fg {
                    fast_offset::<R, RECIP>(xv, pg, tg)
                } else {
                    None
                };
                let rq = rq.unwrap_or_else(|| offsets::<R, RECIP>(xv, pg).1);
                let [lo, hi] = halves(_mm512_mul_ps(pg.scale, rq));
                for (a, h) in ag.iter_mut().zip([lo, hi]) {
                    let e = _mm512_sub_pd(_mm512_cvtps_pd(h), xd);
                    *a = _mm512_add_pd(*a, _mm512_mul_pd(e, e));
                }
            }
        }
        for (g, ag) in acc.iter().enumerate() {
            let mut sums = [0.0f64; CANDS];
            let (lo, hi) = sums.split_at_mut(CANDS / 2);
            // SAFETY: `lo` and `hi` are 8 writable, contiguous f64 (64 bytes) each; storeu
            // needs no alignment.
            unsafe {
                _mm512_storeu_pd(lo.as_mut_ptr(), ag[0]);
                _mm512_storeu_pd(hi.as_mut_ptr(), ag[1]);
            }
            let first = g * CANDS;
            for (o, s) in out.iter_mut().skip(first).take(CANDS).zip(sums) {
                *o += s;
            }
        }
    }

    /// `calib::sse_of` (module doc of [`sse_group`]): the candidates in groups of up to 64.
    #[target_feature(enable = "avx512f")]
    pub(in super::super) fn sse<const R: u8, const RECIP: bool>(
        x: &[f32],
        cands: &[KernelParams],
        out: &mut [f64],
    ) {
        const MAX: usize = 4 * CANDS;
        for (c, o) in cands.chunks(MAX).zip(out.chunks_mut(MAX)) {
            match c.len().div_ceil(CANDS) {
                1 => sse_group::<R, RECIP, 1>(x, c, o),
                2 => sse_group::<R, RECIP, 2>(x, c, o),
                3 => sse_group::<R, RECIP, 3>(x, c, o),
                _ => sse_group::<R, RECIP, 4>(x, c, o),
            }
        }
    }
}
