"""Which kernel a convolution or pooling call takes, and why; a switch to force one::

    import minigrad.kernels as kernels
    print(kernels.explain((64, 6, 14, 14), (16, 6, 5, 5)))    # LeNet's second layer
    with kernels.use("direct"):               # every conv and pooling on the plain loops
        model(x).sum().backward()
    with kernels.trace() as calls:            # which kernels ran
        model(x)

The paths (their kernels in ext/; the Python glue in minigrad/ops/conv_dispatch.py)::

  conv2d, conv_transpose2d
    direct    ext/conv_direct.pyx    the formulas of DESIGN.md as loops: forward, ∂L/∂w, and
                                     seed 004's ∂L/∂x phase by phase; every configuration
    gemm      ext/conv_im2col.pyx    im2col / col2im around np.matmul (no OpenBLAS found)
    blas      ext/conv_im2col.pyx    per-thread im2col blocks × single-threaded OpenBLAS GEMM
    winograd  ext/winograd.pyx       F(2×2, 3×3): forward, and ∂L/∂x at stride 1; ∂L/∂w
                                     (the same tiles, 16 GEMMs over them) only when forced
    winograd4 ext/winograd.pyx       F(4×4, 3×3): forward and ∂L/∂x as 'winograd', 36 GEMMs
                                     over 4×4 tiles; asked first, on outputs of 7×7 and
                                     more with enough channels; ∂L/∂w on the larger of them
                                     (both: the kernel transforms G·w·Gᵀ and ∂L/∂w's adjoint
                                     16 kernels a vector, ext/wino_kernels.h, for float32
                                     on AVX-512; the same numbers as the loops)
    k16, w16  ext/conv_direct16.pyx  the direct forward vectorised over 16 output channels
              + ext/direct16.h       (k16) or 16 output pixels (w16): small float32 layers;
                                     w16 also ∂L/∂x at stride 1 (a forward correlation)
                                     and ∂L/∂w at stride 1 (each tap's shifted input
                                     stream against δ's, 16 positions at a time)
    k32       ext/conv_direct16.pyx  the direct forward over tiles of 32 output channels ×
              + ext/direct16.h       8 output pixels (any rows, any stride) from tables of
                                     window and tap offsets, and ∂L/∂w over tiles of 32
                                     output channels × 8 taps: float32 strided layers with
                                     K a multiple of 32 (ResNet's stride-2 3×3), AVX-512
    pointwise ext/conv_pointwise.pyx 1×1, stride 1, no padding, one group: a GEMM per sample
                                     on the tensors in place (no im2col), every pass; on
                                     planes of ≤ 4 pixels one GEMM for the whole batch
    depthwise ext/conv_depthwise.pyx groups = C = K (one filter per channel), every pass:
                                     whole padded planes, each output row from all taps,
                                     the backward over seed 004's dilated δ; float32
                                     planes of ≤ 16 pixels one per 16-lane vector, each
                                     tap one shuffle (AVX-512), else channels-last,
                                     channels in the lanes
    hwnc      ext/conv_hwnc.pyx      one group, small planes: x copied once into
                                     (H, W, N, C·F_w) rows, then one GEMM per kernel row over
                                     all output rows (samples in the GEMM's long side);
                                     every pass (∂L/∂x as a forward correlation, stride 1);
                                     chosen at stride 1, any stride when forced
  max_pool2d, avg_pool2d, adaptive_avg_pool2d
    direct    ext/pool.pyx           windows from per-axis tables: any geometry
    2x2       ext/pool.pyx           2×2 windows at stride 2 tiling the plane (max pooling:
                                     outputs of ≥ maxpool_2x2_min_ow columns, else 'taps')
    plane     ext/pool.pyx           one window = the whole plane (global average pooling)
    taps      ext/pool.pyx           max pooling: every window's inputs listed in a table,
                                     one vector loop per tap over a plane (or a group of small
                                     planes): any geometry whose windows all have a real input
    3x3       ext/pool.pyx           max pooling, 3×3 windows at stride 1 with one pixel of
                                     padding (GoogLeNet's): a pass over each row's three
                                     columns, then one over the three rows' winners
  batch_norm
    direct    minigrad/ops/norm.py   the formulas as NumPy broadcasting
    fused     ext/batchnorm.pyx      one pass for μ and σ², one for y; two for the backward

`_decide` is the one function that chooses (and the only code that reads the thresholds
in `Tuning`; the block sizes are read by the helpers at the end of this file); `_plan`
remembers its answers per layer; `choose` and `explain` call it for given shapes, the ops
call it on every call.
Every path computes the same numbers up to rounding; tests check each against a reference
written from the formulas. The measurements behind each threshold are in
benchmarks/RESULTS.md (written by the benchmark scripts).

Notation (DESIGN.md): x (N, C, H, W), w (K, C/G, F_h, F_w) — K is only ever the number
of output channels —, output (N, K, OH, OW), stride S, padding P, dilation D, groups G.
"""
import collections
import contextlib
import contextvars
import dataclasses

import numpy as np

from . import _blas
from ._ext import conv_depthwise as _dwk
from ._ext import conv_direct16 as _d16
from ._ext import winograd as _wg

__all__ = ["use", "trace", "choose", "explain", "Paths", "Tuning", "KernelCall",
           "CONV_PATHS", "POOL_PATHS", "simd_level"]

def _cpu_vendor():
    """The CPU's vendor string as Linux reports it ('GenuineIntel', 'AuthenticAMD'), or ''
    where /proc/cpuinfo is not there to say: a few Tuning defaults differ by vendor, each
    measured on both (benchmarks/RESULTS.md)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


_CPU_VENDOR = _cpu_vendor()

CONV_PATHS = ("direct", "gemm", "blas", "winograd", "winograd4", "k16", "k32", "w16", "pointwise",
              "depthwise", "hwnc")
POOL_PATHS = ("direct", "2x2", "plane", "taps", "3x3")


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The thresholds and block sizes of the convolution kernels (defaults measured on a
    2-core AVX-512 machine; the tables are in benchmarks/RESULTS.md, section named after
    the field). Override any of them for a block: `kernels.use(None, k16_max_k=64)`."""
    # ---- which path ----
    # direct loops for grouped layers with ≤ this many taps per output (depthwise): their
    # per-group GEMMs would be matrix-vector products over a copied im2col matrix
    direct_max_taps: int = 32
    # Winograd when C·K/(C+K) ≥ this: per tile the GEMMs save ∝ C·K, the transforms cost ∝ C+K
    winograd_min_ck: float = 6
    # ... and the call has ≥ this many 2×2 tiles: the 16·K·C transformed weights are paid per call
    winograd_min_tiles: int = 256
    # ... and an output of at least this many rows and columns (7×7 wastes a quarter of its
    # tiles on half tiles, and still pays; 4×4 and 2×2 do not) ...
    winograd_min_size: int = 7
    # ... except on outputs of winograd_small_min_size up to winograd_min_size (4×4: two
    # tiles a row, which the transforms take in chunks across tile rows) with ≥
    # winograd_small_min_tiles tiles: there F(2×2) is asked before hwnc for the forward,
    # and for ∂L/∂x where C·K/(C+K) ≥ winograd_small_dx_min_ck
    winograd_small_min_size: int = 4
    winograd_small_min_tiles: int = 32
    winograd_small_dx_min_ck: float = 64
    # Winograd F(4×4, 3×3) ('winograd4': 36 products per 16 outputs, F(2×2)'s 16 per 4),
    # asked before hwnc and w16, on outputs of at least this many rows and columns (on
    # smaller ones most of its 6×6 patches are padding: hwnc) ...
    winograd4_min_size: int = 7
    # ... where C·K/(C+K) ≥ this (with fewer channels the transforms eat the saving: w16,
    # hwnc; DenseNet's 128 → 32, 25.6, stays with them) ...
    winograd4_min_ck: float = 28
    # ... and the call has ≥ this many 4×4 tiles (the 36·K·C transformed weights are paid
    # per call)
    winograd4_min_tiles: int = 32
    # ∂L/∂w by F(4×4) where the forward would take it and C·K/(C+K) ≥ this, outputs of at
    # least winograd4_wgrad_min_size, ≥ winograd4_wgrad_min_tiles 4×4 tiles and K·C ≤
    # winograd4_wgrad_max_kc (few tiles: short GEMMs that each add 36·K·C partial sums)
    winograd4_wgrad_min_ck: float = 32
    winograd4_wgrad_min_size: int = 8
    winograd4_wgrad_min_tiles: int = 64
    winograd4_wgrad_max_kc: int = 256 * 256
    # ... and on outputs of one 4×4 tile (4 × 4, the 6×6 patch exactly the padded plane:
    # nothing wasted), where C·K/(C+K) ≥ winograd4_wgrad_min_ck and the call has ≥ this
    # many tiles (samples: the GEMMs' inner dimension), before hwnc: ResNet-18's 512 × 4²
    # (batch 32) and GoogLeNet's 4 × 4 layers (batch 16) at 0.60–0.92 of hwnc's time with
    # the host in its slow phase, 0.86–1.11 in its fast one (whole steps neutral to 3 %
    # better); on 8 tiles 1.1–2.0 (RESULTS.md, "Session 24")
    winograd4_wgrad_tile_min_tiles: int = 16
    # F(4×4)'s tile transforms (forward, ∂L/∂x, ∂L/∂w) by ext/winograd4.h's gathers and
    # scatters, 16 tiles a vector (float32, SIMD level 2), on outputs of at most this many
    # 4×4 tiles a row: there a tile row is a short run and the scalar loops spend their time
    # between runs (14×14, 4 tiles a row: forward 0.68–0.83 of the scalar loops); on wider
    # rows they read long runs, and the gathers cost more (32×32, 8 a row: 1.14–1.35)
    winograd4_vector_max_tw: int = 4
    # ... and on rows of at least this many tiles the input transform (forward and ∂L/∂x: of
    # x and δ; ∂L/∂w: of x) takes a tile row's patches a vector (ext/winograd4.h
    # mg_wino4_input_rows: each patch row read by masked loads, then split into its 4t + q
    # entries by permutes): ResNet-18's 64 × 32² layers (RESULTS.md, "Session 23")
    winograd4_rows_min_tw: int = 5
    # ... and there F(4×4) also where C·K/(C+K) ≥ winograd4_vector_min_ck (instead of
    # winograd4_min_ck) on at most winograd4_vector_max_tiles 4×4 tiles: DenseNet's 128 → 32
    # on 8 × 16² and 8 × 8², 0.69–0.77 of w16's and hwnc's time in each pass; not 16 → 16
    # (1.2–1.3). The cap depends on the CPU: on an AMD EPYC (Zen 4) ResNet-20's 32 → 32 on
    # 128 × 14² (2048 tiles) ran at 1.05–1.2 of w16's time, so w16 keeps it there; on an
    # Intel Xeon (AVX-512, 2 MiB L2) the same layer ran at 0.57–0.72 of w16's time in the
    # forward and ∂L/∂x (∂L/∂w 1.0), and on 256 × 14² at 0.61–0.62: no cap
    winograd4_vector_min_ck: float = 10
    winograd4_vector_max_tiles: int = 1024 if _CPU_VENDOR == "AuthenticAMD" else 2 ** 62
    # ... and there ∂L/∂w by F(4×4) wherever the forward takes it, from outputs of this
    # size (instead of the winograd4_wgrad_* rule): ResNet-20's 128×64×7² → 64, 0.76 of
    # w16's time (the scalar transforms: 0.98)
    winograd4_vector_wgrad_min_size: int = 7
    # k16 when K ≤ this, output rows ≤ k16_max_ow and ≥ k16_min_taps taps per output: small
    # layers whose im2col copy costs as much as the GEMM
    k16_max_k: int = 32
    k16_max_ow: int = 15
    k16_min_taps: int = 64
    # k32 for the forward and ∂L/∂w of strided layers (stride > 1 along an axis) with a
    # kernel larger than 1×1 (a 1×1 at stride 2 subsamples: its im2col GEMM was as fast), K
    # a multiple of 32 and ≥ k32_min_taps taps per output (MobileNetV2's stem, 3×3 over RGB:
    # 0.85–0.89 of the im2col GEMM's time; fewer taps unmeasured), with AVX-512; in groups of
    # samples whose padded copies (and, for ∂L/∂w, δ's) fill ≤ k32_group_bytes (a block's
    # weights, or ∂L/∂w's partial sums, pass through once per group), the forward's taps in
    # chunks of ≤ k32_chunk_taps (a chunk's weights, 128 bytes a tap, stay in L1 next to
    # the tap table and the inputs the tiles read)
    k32_min_taps: int = 27
    k32_group_bytes: int = 1 << 20
    k32_chunk_taps: int = 128
    # ... and ∂L/∂w by k32 only where the weight has ≤ k32_wgrad_max_weights entries (each
    # thread's partial sums pass through once per group: on ResNet-18's larger layers the
    # fused im2col backward was as fast or faster) and the output ≤ k32_wgrad_max_pixels
    # pixels (on the 7×7 stems' 32×32 outputs w16's phase streams were faster)
    k32_wgrad_max_weights: int = 1 << 16
    k32_wgrad_max_pixels: int = 256
    # ... and, with this set, ∂L/∂w by k32 at stride 1 too (within the same limits): on the
    # AMD EPYC (Zen 5) of session 26 ResNet-20's 32 → 32 on 128 × 14² took 2.4 ms by k32
    # against 4.8 by w16's streams (PyTorch: 2.5); unmeasured on the Xeon, where w16 keeps it
    k32_wgrad_stride1: bool = _CPU_VENDOR == "AuthenticAMD"
    # ... and the forward at stride 1 on outputs of ≤ k32_stride1_max_size rows and columns
    # where Winograd F(2×2) would take the small plane, for weights of ≤
    # k32_stride1_max_weights entries (DenseNet's and GoogLeNet's 4×4 stages: 0.76–0.9 of
    # F(2×2)'s time; ResNet-18's 256 → 256 on 4×4 even, its 512 → 512 1.18×; on 8×8 F(4×4)
    # is faster, on 2×2 hwnc)
    k32_stride1_max_size: int = 4
    k32_stride1_max_weights: int = 1 << 19
    # ... and, with this set, the forward and ∂L/∂x at stride 1 wherever w16 would take them
    # (K, for ∂L/∂x C, a multiple of 32): on the AMD EPYC (Zen 5) of session 27, k32 took
    # 0.78–0.90 of w16's time on 32 → 32 at 7², 14², 16² and 28², 64 → 32 and 64 → 64 at 14²
    # (ResNet-20's 32 → 32 on 128 × 14²: 2.04 against 2.51 ms, either pass); unmeasured on
    # the Xeon, where w16 keeps them
    k32_before_w16: bool = _CPU_VENDOR == "AuthenticAMD"
    # w16 when K ≤ this (asked before Winograd, which it beats on such layers: a GEMM of only
    # K rows runs far below peak); at a row stride > 1 (the row kernel) on rows ≥
    # w16_min_ow wide; at stride 1 (flat streams, several small planes to a stream) on any
    # plane with ≥ w16_min_taps taps (C/G·F_h·F_w: each stream's copy is paid once for all)
    w16_max_k: int = 32
    w16_min_ow: int = 14
    w16_min_taps: int = 16
    # ... and at stride 1 for K ≤ this where Winograd declines (before k16 and blas)
    w16_flat_max_k: int = 64
    # k16 before w16's flat streams where the streams' share of output positions is below
    # this times k16's (kernels._k16_before_flat)
    w16_flat_vs_k16: float = 0.75
    # ∂L/∂x by w16 at stride 1 (a forward correlation of δ into C channels) when K ≤
    # w16_max_k, w16_min_k ≤ C ≤ w16_flat_max_k and the planes have ≥ w16_min_pixels
    # pixels: fewer output channels leave its 8-wide blocks mostly empty (C = 4 loses to
    # blas by 2–15 %; C = 5–7 wins by 1–47 %, LeNet's second layer C = 6: RESULTS.md)
    w16_min_k: int = 5
    w16_min_pixels: int = 49
    # ∂L/∂w by w16 (stride 1) for K ≤ this on output planes of ≥ w16_min_pixels pixels with
    # ≥ w16_min_taps taps: its streams beat im2col + GEMM on few output channels; on small
    # planes the padding, with few taps the copy of δ costs
    w16_wgrad_max_k: int = 64
    # w16 (forward, ∂L/∂w) at a stride s > 1 over x's s×s phases: only with ≥ this many taps
    # and output planes of ≥ w16_phase_min_pixels: the phases' strided gather costs more
    # than stride 1's padded copy, and must be shared by enough work
    w16_phase_min_taps: int = 64
    w16_phase_min_pixels: int = 100
    # ... and at most this many phase streams (C·s²): more, and the taps' reads scatter over
    # too many streams (32×32×32² → 64 at stride 2: ∂L/∂w 1.32× im2col's)
    w16_phase_max_streams: int = 64
    # 'hwnc' (one group, stride 1) for the forward and ∂L/∂x on planes of at most this
    # many output pixels (∂L/∂x: input pixels), before every other path: there im2col's
    # per-sample blocks make GEMMs of a few columns and Winograd's tiles are mostly padding
    hwnc_max_pixels: int = 49
    # ... unless w16's flat streams run the pass and at least this share of their grid
    # positions are outputs (kernels._flat_grid: 'same' 3×3 on 7×7 planes 49 of 64)
    hwnc_vs_w16_fill: float = 0.75
    # ... and for ∂L/∂w on output planes of at most this many
    hwnc_wgrad_max_pixels: int = 16
    # ... and for any pass on planes of at most this many where every other specialised
    # path declines (the pass would take the im2col GEMM)
    hwnc_fallback_max_pixels: int = 64
    # 'pointwise' on planes of at most this many pixels: the whole batch in one product
    # per pass (x, δ copied channel-major), not one per sample with the plane's few pixels
    # as its columns (each of which packs all of w again)
    pointwise_batch_max_pixels: int = 4
    # ... and on larger planes where the weight is large against the pixels: K·C ≥ this
    # times L·(C + K) (repacking w for every sample, N·K·C values, against the batched
    # layout's channel-major copies of x and y, N·L·(C + K)): GoogLeNet's and DenseNet's
    # widest 1×1 layers on 4×4 planes
    pointwise_batch_weight_ratio: float = 8.0
    # 'depthwise': channels in the vector lanes (blocks of 64 channels of one sample
    # transposed to channels-last) for output planes of at most this many pixels
    depthwise_cl_max_pixels: int = 16
    # ... and at stride 1 on output planes of at most this many (MobileNetV2's 8×8 layers:
    # forward + backward 0.59–0.87 of the whole-plane loops' time; 9×9 and larger planes
    # and stride 2, whose channels-last backward scatters, lose: RESULTS.md, session 25)
    depthwise_cl_s1_max_pixels: int = 64
    # ... and, before that, one plane per 16-lane vector (float32, input and output planes of
    # at most depthwise_lanes_max_pixels ≤ 16 pixels, ≤ 25 taps) on CPUs of at least this
    # SIMD level (2: AVX-512 shuffles a plane in one instruction; AVX2 lowers the shuffle to
    # element moves and is slower than channels-last there)
    depthwise_lanes_max_pixels: int = 16
    depthwise_lanes_min_simd: int = 2
    # ... on input planes of at least this many pixels (a 2×2 plane fills a quarter of the
    # vector, where channels-last fills all of it: MobileNetV2's 32×960×2² 0.40 vs 0.26 ms)
    depthwise_lanes_min_pixels: int = 9
    # max pooling by its tap table ('taps': every window's inputs listed, one vector loop
    # per tap over a plane, or a group of small planes) where the table (the most real
    # inputs of a window × the outputs of a plane or group) has at most this many entries,
    # 4 bytes each, made once per geometry; larger planes walk the per-axis tables
    maxpool_taps_max_entries: int = 1 << 20
    # ... and 2×2 max pooling at stride 2 too on outputs of fewer than this many columns:
    # the '2x2' kernel's rows are then a pair of outputs each (VGG-11's 32×512×4² 0.47 ms
    # against the table's 0.16, GoogLeNet's 16×832×4² 0.37 vs 0.14; 8×8 and larger: '2x2')
    maxpool_2x2_min_ow: int = 4
    # ---- block sizes ----
    # 'w16' ∂L/∂w: δ's streams of one block of output channels about this size
    w16_wgrad_block_bytes: int = 32 << 10
    # 'w16' forward at stride 1: groups of samples of at least this many padded positions
    w16_flat_min_positions: int = 1024
    # 'gemm': im2col workspace bound per call; the batch is processed in chunks
    workspace_bytes: int = 64 << 20
    # 'gemm': threads for im2col/col2im between the (multithreaded) matmuls: one, so the two
    # thread pools never spin against each other on the same cores
    gemm_helper_threads: int = 1
    # 'blas': im2col block per thread of about this size, but ≥ blas_min_columns pixels
    blas_block_bytes: int = 4 << 20
    blas_min_columns: int = 1024
    # 'blas': several samples per block only when OH·OW is below this, for about
    # blas_batch_columns output pixels
    blas_batch_below: int = 256
    blas_batch_columns: int = 256
    # 'blas': ∂L/∂w as δ @ im2col(x)ᵀ when K/G ≥ this, else as im2col(x) @ δᵀ (faster with
    # few output channels, but then transposed back: for the largest weights that costs more)
    blas_dw_rows_min_k: int = 384
    # 'blas': two-step (shifted rows) im2col for output rows up to this wide
    shift_max_ow: int = 32
    # 'winograd': about this many 2×2 output tiles per block
    winograd_block_tiles: int = 96
    # 'winograd4': about this many 4×4 output tiles per block
    winograd4_block_tiles: int = 32
    # ... and for its ∂L/∂w on layers of m = min(C, K) < this many channels, blocks this // m
    # times larger: a block's 36 GEMMs (K, tiles) @ (tiles, C) are then less tiny
    # (ResNet-20's 128×32×14² → 32: 2.65 → 2.05 ms hot with 64 tiles; RESULTS.md)
    winograd4_wgrad_channels: int = 64
    # 'winograd'/'winograd4' ∂L/∂w split by point (every block transformed into one buffer,
    # then the T² GEMMs shared out by ξ, each summing all blocks: no per-thread (T², K, C)
    # partials) when threads·K·C ≥ this × (C + K)·tiles — the partials outweigh the
    # transformed tiles — and the buffer fits in workspace_bytes: ResNet-18's 256 × 8²
    # layers (RESULTS.md, "Session 23")
    winograd_wgrad_points_ratio: float = 1.0

    def __hash__(self):
        """The fields' hash, computed once (a frozen instance never changes): _plan's key
        holds the Tuning, and hashing its fields cost about 2 µs on every call. The fields
        are numbers, so a pickled copy's kept hash is right in any process."""
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self)))
            object.__setattr__(self, "_hash", h)
        return h


Paths = collections.namedtuple("Paths", "forward input_grad weight_grad")
Paths.__doc__ = """The path each pass of one call takes (None: the pass does not exist,
e.g. ∂L/∂w of a pooling)."""

KernelCall = collections.namedtuple("KernelCall", "op which path shapes")
KernelCall.__doc__ = """One kernel run recorded by `trace()`: op ('conv2d', 'max_pool2d',
…), which pass ('forward', 'input_grad', 'weight_grad', 'bias_grad'), the path, and the
shapes of the kernel's first operands (input, weight)."""


class _State:
    __slots__ = ("force", "tuning", "log")

    def __init__(self, force, tuning, log):
        self.force, self.tuning, self.log = force, tuning, log


# Per thread / task: a context variable (a thread you start runs with the defaults unless
# it enters use() itself).
_state = contextvars.ContextVar("minigrad.kernels", default=_State(None, Tuning(), None))


@contextlib.contextmanager
def use(path=None, **tuning):
    """Run the block with `path` forced wherever it applies, and/or some `Tuning` overridden.

    path: one of CONV_PATHS or POOL_PATHS, or None (choose by shape, the default). A path
    that does not apply to a call (k16 on float64, winograd on a 5×5 kernel, 2x2 on a 3×3
    pooling) leaves that call to the usual choice; 'direct' applies to every convolution,
    pooling and batch norm: the lecture's loops (for batch norm, its NumPy formulas) for
    every pass. tuning: fields of `Tuning`.

    Restored on exit, also on an exception; nests (the inner block wins). Per thread: a
    thread started inside the block runs with the defaults unless it enters use() itself.
    """
    if path is not None and path not in CONV_PATHS + POOL_PATHS:
        raise ValueError(f"kernels.use(): path must be None or one of "
                         f"{sorted(set(CONV_PATHS + POOL_PATHS))}, got {path!r}")
    st = _state.get()
    t = st.tuning
    if tuning:
        bad = sorted(set(tuning) - {f.name for f in dataclasses.fields(Tuning)})
        if bad:
            raise TypeError(f"kernels.use(): unknown setting(s) {bad}; the settings are the "
                            f"fields of kernels.Tuning")
        t = dataclasses.replace(t, **tuning)
    token = _state.set(_State(path, t, st.log))
    try:
        yield
    finally:
        _state.reset(token)


@contextlib.contextmanager
def trace():
    """Record the kernels that run in the block: yields a list that fills with a
    `KernelCall(op, which, path, shapes)` per kernel run (nested traces record into the
    innermost)."""
    st = _state.get()
    log = []
    token = _state.set(_State(st.force, st.tuning, log))
    try:
        yield log
    finally:
        _state.reset(token)


def tuning():
    """The `Tuning` in effect here."""
    return _state.get().tuning


def _ran(op, which, path, *shapes):
    """Called by the ops at each kernel run: recorded when a trace() is active."""
    log = _state.get().log
    if log is not None:
        log.append(KernelCall(op, which, path, tuple(tuple(s) for s in shapes)))


_SIMD_LEVEL = _d16.simd_level()


def simd_level():
    """2: AVX-512, 1: AVX2 + FMA, 0: neither (the k16/w16 loops then do not pay)."""
    return _SIMD_LEVEL


# ---- the chooser ---------------------------------------------------------------------------

_PLANS = {}                        # _plan's memo: (shapes, geometry, settings) -> Paths
_PLANS_MAX = 4096                  # entries before it starts afresh (a bound, not an LRU)


def _plan(op, x_shape, w_shape, dtype, g, out_hw, why=None):
    """The paths of one call's passes (_decide), remembered per convolution: a layer asks
    on every call with the same shapes, and deciding costs more than a small layer's
    kernels (measured: 12 µs a call, against 8 µs for an add forward and backward). The
    key holds everything _decide reads — shapes, dtype, geometry, the forced path and the
    Tuning of `use`, the SIMD level and whether OpenBLAS is there —, so a `use` block or
    a test that changes one of them gets a fresh decision. why: None, or a dict that
    receives the reasons per pass (then nothing is remembered)."""
    if why is not None or op in ("max_pool2d", "avg_pool2d"):
        return _decide(op, x_shape, w_shape, dtype, g, out_hw, why)
    st = _state.get()
    key = (op, tuple(x_shape), tuple(w_shape), dtype, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw,
           g.groups, tuple(out_hw), st.force, st.tuning, _SIMD_LEVEL, _blas.available())
    paths = _PLANS.get(key)
    if paths is None:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        paths = _PLANS[key] = _decide(op, x_shape, w_shape, dtype, g, out_hw, None)
    return paths


def _decide(op, x_shape, w_shape, dtype, g, out_hw, why=None):
    """The paths of one call's passes: the only place that decides a path, and the only
    reader of the path thresholds of `Tuning` (the block sizes are read by the helpers at
    the end of this file). why: None, or a dict that receives the reasons per pass.

    conv2d: x_shape (N, C, H, W), w_shape (K, C/G, F_h, F_w), dtype the compute dtype, g
    the geometry (sh, sw, ph, pw, dh, dw, groups: stride, top/left padding, dilation,
    groups), out_hw (OH, OW). ∂L/∂x takes w16, Winograd, hwnc or the base path (direct,
    blas, gemm, pointwise or depthwise); ∂L/∂w takes Winograd F(4×4), k32, w16, hwnc, Winograd
    F(2×2) (when forced) or the base path; where both take the base path, one fused call
    serves both.
    max_pool2d / avg_pool2d: g the pooling geometry (ops/pool.py's _Geometry); the other
    arguments are unused.
    """
    st = _state.get()
    force, t = st.force, st.tuning
    if op in ("max_pool2d", "avg_pool2d"):
        return _pool_plan(op, g, force, t, why)
    if force not in CONV_PATHS:           # a pooling path forced: convolutions choose by shape
        force = None
    K, Cg, kh, kw = w_shape
    N, C, H, W = x_shape
    OH, OW = out_hw
    note = _notes(why)
    # base: what every pass takes unless a specialised kernel applies
    if force in ("direct", "gemm", "blas"):
        base = force
        if force == "blas" and not _blas.available():
            base = "gemm"
        note("base", f"forced {force!r}" + ("; no OpenBLAS next to NumPy: 'gemm'" if base != force else ""))
    elif _pointwise_fits(x_shape, w_shape, g, out_hw, force, note):
        base = "pointwise"
    elif _depthwise_fits(x_shape, w_shape, g, force, note):
        base = "depthwise"
    elif g.groups > 1 and Cg * kh * kw <= t.direct_max_taps:
        base = "direct"
        note("base", f"{g.groups} groups of {Cg}·{kh}·{kw} = {Cg * kh * kw} ≤ direct_max_taps "
                     f"= {t.direct_max_taps} taps: per-group GEMMs would be matrix-vector products")
    else:
        base = "blas" if _blas.available() else "gemm"
        note("base", "im2col + OpenBLAS GEMM per thread" if base == "blas"
             else "im2col + np.matmul (no OpenBLAS next to NumPy)")
    def w16_or_k32(k, c, geom, out, which):
        """Where w16 would run a stride-1 pass (a correlation of c into k channels with an
        output of `out`): k32 instead if it fits there (k32_before_w16), else w16."""
        return ("k32" if _k32_fits(k, c, (kh, kw), dtype, geom, force, t, note, out, which,
                                   for_w16=True) else "w16")

    # forward (Winograd F(4×4) first where it applies, and F(2×2) on outputs smaller than
    # winograd_min_size; then hwnc on small planes, w16 on few output channels and wide
    # rows, before Winograd F(2×2) elsewhere)
    wino = (None if base in ("pointwise", "depthwise") else
            _winograd_fits(N, C, K, (kh, kw), g, (OH, OW), force, t, note, "forward", dtype))
    if base in ("pointwise", "depthwise"):     # (pointwise: measured faster than k16/w16 on 1×1)
        fwd = base
    elif wino == "winograd4" or (wino and min(OH, OW) < t.winograd_min_size):
        # (F(2×2) on a small plane: k32 first where it takes the plane at stride 1)
        fwd = ("k32" if wino == "winograd" and _k32_fits(K, Cg, (kh, kw), dtype, g, force, t,
                                                          note, out_hw=(OH, OW))
               else wino)
    elif _hwnc_fits(base, g, (OH, OW), force, t, note, "forward"):
        fwd = (w16_or_k32(K, Cg, g, (OH, OW), "forward")
               if g.sh == 1 and _w16_fits(K, Cg * kh * kw, Cg, dtype, g, (OH, OW), force,
                                          t, note, t.w16_flat_max_k)
               and _w16_fuller(g, (H, W), (OH, OW), (kh, kw), force, t, note, "forward")
               else "hwnc")
    elif _k32_fits(K, Cg, (kh, kw), dtype, g, force, t, note, out_hw=(OH, OW)):
        fwd = "k32"
    elif (_w16_fits(K, Cg * kh * kw, Cg, dtype, g, (OH, OW), force, t, note, t.w16_max_k)
          and not _k16_before_flat(K, Cg * kh * kw, dtype, g, (H, W), (OH, OW), (kh, kw), force, t,
                                   note)):
        fwd = w16_or_k32(K, Cg, g, (OH, OW), "forward")
    elif wino:
        fwd = wino
    elif (_flat_streams(g) and _w16_fits(K, Cg * kh * kw, Cg, dtype, g, (OH, OW), force, t, note,
                                         t.w16_flat_max_k)
          and not _k16_before_flat(K, Cg * kh * kw, dtype, g, (H, W), (OH, OW), (kh, kw), force, t,
                                   note)):
        fwd = w16_or_k32(K, Cg, g, (OH, OW), "forward")
    elif _k16_fits(K, Cg * kh * kw, dtype, g, OW, force, t, note):
        fwd = "k16"
    elif _hwnc_fits(base, g, (OH, OW), force, t, note, "forward", fallback=True):
        fwd = "hwnc"
    else:
        fwd = base
    # ∂L/∂x: at stride 1 and dilation 1 there is nothing to dilate, so it is the forward
    # correlation of δ (padded by F−1−P) with the flipped, channel-swapped kernel
    # (by Winograd F(4×4) where it applies, or F(2×2) on a small plane with many channels;
    # else by hwnc or w16 (or k32 in w16's place) where both channel counts are small, as
    # for the forward; else by Winograd F(2×2))
    dx = base
    if (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1) and kh - 1 - g.ph >= 0 and kw - 1 - g.pw >= 0:
        w16 = (base not in ("pointwise", "depthwise") and C >= t.w16_min_k
               and _w16_fits(C, K * kh * kw, K, dtype, g, (H, W), force, t, note,
                             t.w16_flat_max_k, "input_grad"))
        wino = (None if base in ("pointwise", "depthwise") else
                _winograd_fits(N, K, C, (kh, kw), g, (H, W), force, t, note, "input_grad", dtype))
        if wino == "winograd4" or (wino and min(H, W) < t.winograd_min_size):
            dx = wino
        elif _hwnc_fits(base, g, (H, W), force, t, note, "input_grad"):
            gt = _Geom1(kh - 1 - g.ph, kw - 1 - g.pw)      # δ padded by F−1−P
            dx = (w16_or_k32(C, K, g, (H, W), "input_grad")
                  if w16 and _w16_fuller(gt, (OH, OW), (H, W), (kh, kw), force, t, note,
                                         "input_grad") else "hwnc")
        elif w16 and K <= t.w16_max_k:
            dx = w16_or_k32(C, K, g, (H, W), "input_grad")
        elif force == "k32" and _k32_fits(C, K, (kh, kw), dtype, g, force, t, note, (H, W),
                                          "input_grad"):
            dx = "k32"
        elif wino:
            dx = wino
        elif _hwnc_fits(base, g, (H, W), force, t, note, "input_grad", fallback=True):
            dx = "hwnc"
    else:
        note("input_grad", "w16, k32 and winograd need stride 1, dilation 1 and padding ≤ F−1")
    # ∂L/∂w: by k32 on the smaller strided layers whose forward it takes, or by w16 (each
    # tap's shifted x stream against δ's) on small enough layers, in place of an im2col GEMM
    wg = base
    if force in ("winograd", "winograd4") and _winograd_fits(N, C, K, (kh, kw), g, (OH, OW), force,
                                                             t, note, "weight_grad", dtype):
        wg = force               # (F(2×2) only when forced: RESULTS.md, Winograd's ∂L/∂w)
    elif _winograd4_wgrad_fits(N, C, K, (kh, kw), g, (OH, OW), force, t, note, dtype):
        wg = "winograd4"
    elif _hwnc_fits(base, g, (OH, OW), force, t, note, "weight_grad"):
        wg = "hwnc"
    elif base in ("blas", "gemm") and _k32_fits(K, Cg, (kh, kw), dtype, g, force, t, note,
                                                (OH, OW), "weight_grad"):
        wg = "k32"
    elif base in ("blas", "gemm") and _w16_wgrad_fits(K, Cg * kh * kw, Cg, dtype, g, (OH, OW),
                                                    force, t, note):
        wg = "w16"
    elif _hwnc_fits(base, g, (OH, OW), force, t, note, "weight_grad", fallback=True):
        wg = "hwnc"
    return Paths(fwd, dx, wg)


def _pointwise_fits(x_shape, w_shape, g, out_hw, force, note):
    """A 1×1 kernel over all channels at stride 1 without padding (any dilation: one tap)
    is a plain GEMM per sample: y[n] = w (K, C) @ x[n] (C, H·W). Needs OpenBLAS."""
    if force not in (None, "pointwise"):
        return False
    fits = (w_shape[2:] == (1, 1) and (g.sh, g.sw, g.ph, g.pw, g.groups) == (1, 1, 0, 0, 1)
            and tuple(out_hw) == tuple(x_shape[2:]) and w_shape[1] == x_shape[1])
    if not fits:
        note("base", "pointwise: needs a 1×1 kernel, stride 1, no padding, one group")
        return False
    if not _blas.available():
        note("base", "pointwise: no OpenBLAS next to NumPy")
        return False
    note("base", "pointwise: a 1×1 convolution is a GEMM per sample on the tensors in place")
    return True


def _depthwise_fits(x_shape, w_shape, g, force, note):
    """One filter per channel (groups = C = K, MobileNet's 3×3): the direct loops with
    vectorised rows; per-group GEMMs would be 1×(F_h·F_w) matrix products."""
    if force not in (None, "depthwise"):
        return False
    if not (g.groups > 1 and g.groups == x_shape[1] == w_shape[0] and w_shape[1] == 1):
        note("base", "depthwise: needs groups = input channels = output channels")
        return False
    note("base", "depthwise: one filter per channel, vectorised direct loops")
    return True


def _no_note(which, text):
    pass


def _notes(why):
    """note(which, text): records a reason for pass `which` when explain() asks for them."""
    if why is None:
        return _no_note
    return lambda which, text: why.setdefault(which, []).append(text)


def _hwnc_fits(base, g, out_hw, force, t, note, which, fallback=False):
    """ext/conv_hwnc.pyx for one pass whose output plane is out_hw (x's plane for ∂L/∂x,
    asked at stride 1 only): one group, OpenBLAS (the base path an im2col GEMM); unless
    forced, also stride 1 and a plane of at most hwnc_max_pixels pixels
    (hwnc_wgrad_max_pixels for ∂L/∂w; with fallback=True, asked where every other
    specialised path declined: hwnc_fallback_max_pixels)."""
    if force not in (None, "hwnc"):
        return False
    if base not in ("blas", "gemm") or not _blas.available() or g.groups != 1:
        note(which, "hwnc: needs one group and OpenBLAS")
        return False
    if force == "hwnc":
        note(which, "hwnc: forced")
        return True
    if (g.sh, g.sw) != (1, 1):     # it runs them, but slower than 'blas' (RESULTS.md: hwnc)
        note(which, "hwnc declines: stride > 1")
        return False
    px = out_hw[0] * out_hw[1]
    name = ("hwnc_fallback_max_pixels" if fallback else
            "hwnc_wgrad_max_pixels" if which == "weight_grad" else "hwnc_max_pixels")
    ok = px <= getattr(t, name)
    note(which, f"hwnc {'takes it' if ok else 'declines'}: plane {out_hw[0]}×{out_hw[1]} = {px} "
                f"pixels (≤ {name} = {getattr(t, name)}?)")
    return ok


def _winograd_fits(N, C, K, khw, g, out_hw, force, t, note, which, dtype):
    """The Winograd path for a correlation of an (N, C, ·, ·) input into K channels of
    out_hw, or None: 3×3, stride 1, dilation 1, one group, OpenBLAS, and where it pays —
    'winograd4' (F(4×4, 3×3)) on outputs of at least winograd4_min_size with C·K/(C+K) ≥
    winograd4_min_ck and ≥ winograd4_min_tiles 4×4 tiles (asked before hwnc and w16), or
    where its vector transforms run (float32, _winograd4_vector) with C·K/(C+K) ≥
    winograd4_vector_min_ck and at most winograd4_vector_max_tiles tiles; else 'winograd'
    (F(2×2, 3×3)) by its winograd_* thresholds."""
    if force not in (None, "winograd", "winograd4"):
        return None
    if not _blas.available():
        note(which, "winograd: no OpenBLAS next to NumPy")
        return None
    if not _winograd_shape_fits(khw, g):
        note(which, "winograd: needs a 3×3 kernel, stride 1, dilation 1, one group")
        return None
    if force is not None:
        note(which, f"{force}: forced")
        return force
    OH, OW = out_hw
    ck = C * K / (C + K)
    tiles4 = N * -(-OH // 4) * -(-OW // 4)
    four = (min(OH, OW) >= t.winograd4_min_size and ck >= t.winograd4_min_ck
            and tiles4 >= t.winograd4_min_tiles)
    note(which, f"winograd4 {'takes it' if four else 'declines'}: C·K/(C+K) = {ck:.1f} "
                f"(≥ winograd4_min_ck = {t.winograd4_min_ck:g}?), output {OH}×{OW} "
                f"(≥ winograd4_min_size = {t.winograd4_min_size}?), {tiles4} 4×4 tiles "
                f"(≥ winograd4_min_tiles = {t.winograd4_min_tiles}?)")
    if four:
        return "winograd4"
    if (_winograd4_vector(-(-OW // 4), dtype, _winograd4_elements(N, C, K, out_hw))
            and min(OH, OW) >= t.winograd4_min_size):
        four = t.winograd4_min_tiles <= tiles4 <= t.winograd4_vector_max_tiles and \
            ck >= t.winograd4_vector_min_ck
        note(which, f"winograd4 {'takes it' if four else 'declines'} with its vector transforms: "
                    f"C·K/(C+K) = {ck:.1f} (≥ winograd4_vector_min_ck = "
                    f"{t.winograd4_vector_min_ck:g}?), {tiles4} 4×4 tiles (≤ "
                    f"winograd4_vector_max_tiles = {t.winograd4_vector_max_tiles}?)")
        if four:
            return "winograd4"
    tiles = N * -(-OH // 2) * -(-OW // 2)
    # short tile rows make the transforms dearer: below 16 it needs twice the channels
    need = t.winograd_min_ck * (1 if min(OH, OW) >= 16 else 2)
    if which != "weight_grad" and t.winograd_small_min_size <= min(OH, OW) < t.winograd_min_size:
        if which == "input_grad":
            need = max(need, t.winograd_small_dx_min_ck)
        ok = ck >= need and tiles >= t.winograd_small_min_tiles
        note(which, f"winograd {'takes it' if ok else 'declines'} (a small plane, asked before "
                    f"hwnc): C·K/(C+K) = {ck:.1f} (≥ {need:g}?), output {OH}×{OW} "
                    f"(≥ winograd_small_min_size = {t.winograd_small_min_size}?), {tiles} tiles "
                    f"(≥ winograd_small_min_tiles = {t.winograd_small_min_tiles}?)")
        return "winograd" if ok else None
    ok = ck >= need and min(OH, OW) >= t.winograd_min_size and tiles >= t.winograd_min_tiles
    note(which, f"winograd {'takes it' if ok else 'declines'}: C·K/(C+K) = {ck:.1f} (≥ {need:g}?), "
                f"output {OH}×{OW} (≥ winograd_min_size = {t.winograd_min_size}?), "
                f"{tiles} tiles (≥ winograd_min_tiles = {t.winograd_min_tiles}?)")
    return "winograd" if ok else None


def _winograd_shape_fits(khw, g):
    """What every Winograd kernel here needs: a 3×3 kernel, stride 1, dilation 1, one
    group (and OpenBLAS, which the callers check)."""
    return khw == (3, 3) and (g.sh, g.sw, g.dh, g.dw, g.groups) == (1, 1, 1, 1, 1)


def _winograd4_wgrad_fits(N, C, K, khw, g, out_hw, force, t, note, dtype):
    """∂L/∂w by Winograd F(4×4, 3×3) (unforced): where the forward's conditions hold
    (_winograd_fits) and K·C ≤ winograd4_wgrad_max_kc (the threads' (36, K, C) partial sums
    stay small), and also — where the vector transforms run (float32, _winograd4_vector) —
    outputs of at least winograd4_vector_wgrad_min_size; elsewhere C·K/(C+K) ≥
    winograd4_wgrad_min_ck, outputs of at least winograd4_wgrad_min_size and ≥
    winograd4_wgrad_min_tiles 4×4 tiles (the GEMMs' inner dimension is the block's tiles,
    and each block adds 36·K·C partial sums). On a 4×4 output (one tile a sample, where the
    forward declines F(4×4)): C·K/(C+K) ≥ winograd4_wgrad_min_ck and ≥
    winograd4_wgrad_tile_min_tiles tiles."""
    if force is not None:
        return False
    OH, OW = out_hw
    ck = C * K / (C + K)
    tiles4 = N * -(-OH // 4) * -(-OW // 4)
    if (OH, OW) == (4, 4) and _winograd_shape_fits(khw, g) and _blas.available():
        ok = ck >= t.winograd4_wgrad_min_ck and tiles4 >= t.winograd4_wgrad_tile_min_tiles
        note("weight_grad", f"winograd4 {'takes it' if ok else 'declines'} (one 4×4 tile a "
                            f"sample): C·K/(C+K) = {ck:.1f} (≥ winograd4_wgrad_min_ck = "
                            f"{t.winograd4_wgrad_min_ck:g}?), {tiles4} tiles (≥ "
                            f"winograd4_wgrad_tile_min_tiles = {t.winograd4_wgrad_tile_min_tiles}?)")
        return ok
    if _winograd_fits(N, C, K, khw, g, out_hw, force, t, _no_note, "weight_grad",
                      dtype) != "winograd4":
        return False
    if _winograd4_vector(-(-OW // 4), dtype, _winograd4_elements(N, C, K, out_hw)):
        ok = min(OH, OW) >= t.winograd4_vector_wgrad_min_size and K * C <= t.winograd4_wgrad_max_kc
        note("weight_grad", f"winograd4 {'takes it' if ok else 'declines'} with its vector "
                            f"transforms: output {OH}×{OW} (≥ winograd4_vector_wgrad_min_size = "
                            f"{t.winograd4_vector_wgrad_min_size}?), K·C = {K * C} (≤ "
                            f"winograd4_wgrad_max_kc = {t.winograd4_wgrad_max_kc}?)")
        return ok
    ok = (ck >= t.winograd4_wgrad_min_ck and min(OH, OW) >= t.winograd4_wgrad_min_size
          and tiles4 >= t.winograd4_wgrad_min_tiles and K * C <= t.winograd4_wgrad_max_kc)
    note("weight_grad", f"winograd4 {'takes it' if ok else 'declines'}: C·K/(C+K) = {ck:.1f} "
                        f"(≥ winograd4_wgrad_min_ck = {t.winograd4_wgrad_min_ck:g}?), output "
                        f"{OH}×{OW} (≥ winograd4_wgrad_min_size = {t.winograd4_wgrad_min_size}?), "
                        f"{tiles4} 4×4 tiles (≥ winograd4_wgrad_min_tiles = "
                        f"{t.winograd4_wgrad_min_tiles}?), K·C = {K * C} (≤ winograd4_wgrad_max_kc "
                        f"= {t.winograd4_wgrad_max_kc}?)")
    return ok


def _k16_fits(K, taps, dtype, g, OW, force, t, note):
    """ext/direct16.h vectorised over 16 output channels: float32, one group, K % 16 == 0,
    AVX2/AVX-512, small layers."""
    if force not in (None, "k16"):
        return False
    if dtype != np.float32 or g.groups != 1 or K % 16:
        note("forward", "k16: needs float32, one group and K a multiple of 16")
        return False
    if force == "k16":                    # (tests: on any CPU, the baseline build)
        note("forward", "k16: forced")
        return True
    ok = _SIMD_LEVEL > 0 and K <= t.k16_max_k and OW <= t.k16_max_ow and taps >= t.k16_min_taps
    note("forward", f"k16 {'takes it' if ok else 'declines'}: SIMD level {_SIMD_LEVEL} (> 0?), "
                    f"K = {K} (≤ {t.k16_max_k}?), OW = {OW} (≤ {t.k16_max_ow}?), "
                    f"{taps} taps (≥ {t.k16_min_taps}?)")
    return ok


def _k32_fits(K, Cg, khw, dtype, g, force, t, note, out_hw, which="forward", for_w16=False):
    """ext/direct16.h's mg_conv_k32 (tiles of 32 output channels × 8 output pixels; for
    ∂L/∂w, mg_wgrad_k32: 32 output channels × 8 taps): float32, one group, K % 32 == 0; by
    shape with AVX-512 (16 accumulators and 2 vectors of weights or δ would not fit AVX2's
    16 registers), a kernel larger than 1×1 and ≥ k32_min_taps taps, on strided layers or
    (the forward) on outputs of ≤ k32_stride1_max_size rows and columns with ≤
    k32_stride1_max_weights weights, or (for_w16: a stride-1 forward or ∂L/∂x, as a
    correlation of K output channels, that w16 would run) with k32_before_w16 set; for
    ∂L/∂w strided layers (or, with k32_wgrad_stride1, any) with ≤ k32_wgrad_max_weights
    weights and ≤ k32_wgrad_max_pixels output pixels."""
    if force not in (None, "k32"):
        return False
    if dtype != np.float32 or g.groups != 1 or K % 32:
        note(which, "k32: needs float32, one group and K a multiple of 32")
        return False
    if force == "k32":                    # (tests: on any CPU, the baseline build)
        note(which, "k32: forced")
        return True
    taps = Cg * khw[0] * khw[1]
    strided = max(g.sh, g.sw) > 1
    small = max(out_hw) <= t.k32_stride1_max_size and K * taps <= t.k32_stride1_max_weights
    # (in w16's place not on output planes of a multiple of 4 KiB: a tile's 32 channels are
    # then a multiple of 4 KiB apart, its 32 stores fall in one L1 set, and each line is
    # fetched again for the next tile's 8 pixels: 32 × 3 → 32 on 32² took 2.5× w16's time)
    aliased = (out_hw[0] * out_hw[1] * 4) % 4096 == 0
    ok = (_SIMD_LEVEL >= 2 and khw != (1, 1) and taps >= t.k32_min_taps
          and (strided or (small and which == "forward")
               or (which == "weight_grad" and t.k32_wgrad_stride1)
               or (for_w16 and t.k32_before_w16 and not aliased)))
    why = (f"SIMD level {_SIMD_LEVEL} (2?), kernel {khw[0]}×{khw[1]} (not 1×1?), {taps} taps "
           f"(≥ {t.k32_min_taps}?), stride ({g.sh}, {g.sw}) (> 1?"
           + (f" or in w16's place with k32_before_w16 = {t.k32_before_w16} on a "
              f"{out_hw[0]}×{out_hw[1]} output (not a multiple of 4 KiB?)?)" if for_w16 else
              f" or an output ≤ k32_stride1_max_size = {t.k32_stride1_max_size} a side and "
              f"{K * taps} weights ≤ k32_stride1_max_weights = {t.k32_stride1_max_weights}?)"
              if which == "forward" else
              f" or k32_wgrad_stride1 = {t.k32_wgrad_stride1}?)"))
    if which == "weight_grad":
        pixels = out_hw[0] * out_hw[1]
        ok = ok and K * taps <= t.k32_wgrad_max_weights and pixels <= t.k32_wgrad_max_pixels
        why += (f", {K * taps} weights (≤ k32_wgrad_max_weights = {t.k32_wgrad_max_weights}?), "
                f"{pixels} output pixels (≤ k32_wgrad_max_pixels = {t.k32_wgrad_max_pixels}?)")
    note(which, f"k32 {'takes it' if ok else 'declines'}: " + why)
    return ok


def _w16_fits(K, taps, channels, dtype, g, out_hw, force, t, note, max_k, which="forward"):
    """ext/direct16.h vectorised over runs of 16 output pixels: float32, one group, column
    stride 1 or one stride along both axes, AVX2/AVX-512, K ≤ max_k output channels (those
    of the correlation, so C for ∂L/∂x; `channels` its input channels, K for ∂L/∂x). Where
    the flat streams run (_flat_streams: stride 1, or x's phases at stride s): ≥
    w16_min_taps taps (and, for ∂L/∂x, planes of ≥ w16_min_pixels; over the phases,
    _phases_pay); else (a row stride only) the row kernel: rows ≥ w16_min_ow wide."""
    if force not in (None, "w16"):
        return False
    flat = _flat_streams(g)
    if dtype != np.float32 or g.groups != 1 or not (g.sw == 1 or flat):
        note(which, "w16: needs float32, one group and column stride 1 (or one stride along "
                    "both axes, dilation 1)")
        return False
    if force == "w16":
        note(which, "w16: forced")
        return True
    k = "K" if which == "forward" else "C"
    if flat:
        px = out_hw[0] * out_hw[1]
        ok = (_SIMD_LEVEL > 0 and K <= max_k and taps >= t.w16_min_taps
              and (which == "forward" or px >= t.w16_min_pixels)
              and _phases_pay(g, taps, px, channels, t))
        note(which, f"w16 {'takes it' if ok else 'declines'} (flat streams): SIMD level "
                    f"{_SIMD_LEVEL} (> 0?), {k} = {K} (≤ {max_k}?), {taps} taps "
                    f"(≥ {t.w16_min_taps}?)" + ("" if which == "forward" else
                                                f", {px} pixels (≥ {t.w16_min_pixels}?)")
                    + _phases_note(g, taps, px, channels, t))
        return ok
    ok = _SIMD_LEVEL > 0 and K <= t.w16_max_k and out_hw[1] >= t.w16_min_ow
    note(which, f"w16 {'takes it' if ok else 'declines'} (rows): SIMD level {_SIMD_LEVEL} (> 0?), "
                f"{k} = {K} (≤ {t.w16_max_k}?), OW = {out_hw[1]} (≥ {t.w16_min_ow}?)")
    return ok


class _Geom1:
    """The geometry of a stride-1, dilation-1, one-group correlation with top/left padding
    (ph, pw): ∂L/∂x's, of δ against the flipped kernel."""
    sh = sw = dh = dw = groups = 1

    def __init__(self, ph, pw):
        self.ph, self.pw = ph, pw


def _w16_fuller(g, in_hw, out_hw, khw, force, t, note, which):
    """Whether w16's flat streams should take a pass that hwnc claimed (a small plane):
    where at least hwnc_vs_w16_fill of their grid positions are outputs (_flat_grid),
    unless hwnc is forced."""
    if force == "hwnc":
        return False
    fill = _flat_fill(in_hw, out_hw, khw, g)
    ok = fill >= t.hwnc_vs_w16_fill
    note(which, f"{'w16' if ok else 'hwnc'} first: outputs {fill:.2f} of w16's flat positions "
                f"(≥ hwnc_vs_w16_fill = {t.hwnc_vs_w16_fill}?)")
    return ok


def _k16_before_flat(K, taps, dtype, g, in_hw, out_hw, khw, force, t, note):
    """Whether k16 should run a forward that w16's flat streams (_flat_streams) could: where k16
    fits and the share of the flat streams' positions that are outputs, OH·OW / (H_p·W_p)
    (_flat_grid), is below w16_flat_vs_k16 times the share of k16's runs of 10 pixels that
    are (LeNet's second layer: 100 of 196 against 10 of 10)."""
    if not _flat_streams(g) or force == "w16" or not _k16_fits(K, taps, dtype, g, out_hw[1], force,
                                                               t, note):
        return False
    OH, OW = out_hw
    flat = _flat_fill(in_hw, out_hw, khw, g)
    run = _d16.k16_run()
    rows = OW / (-(-OW // run) * run)
    first = flat < t.w16_flat_vs_k16 * rows
    note("forward", f"{'k16' if first else 'w16'} first: outputs {flat:.2f} of the flat positions, "
                    f"{rows:.2f} of k16's (× w16_flat_vs_k16 = {t.w16_flat_vs_k16})")
    return first


def _phases_pay(g, taps, px, channels, t):
    """At stride 1 True; at a stride s > 1 (w16 over x's phases) whether the work shares
    the phases' gather: ≥ w16_phase_min_taps taps, ≥ w16_phase_min_pixels output pixels,
    and at most w16_phase_max_streams streams (C·s², one per channel and phase)."""
    return g.sh == 1 or (taps >= t.w16_phase_min_taps and px >= t.w16_phase_min_pixels
                         and channels * g.sh * g.sw <= t.w16_phase_max_streams)


def _phases_note(g, taps, px, channels, t):
    return ("" if g.sh == 1 else
            f"; stride {g.sh} over x's phases: {taps} taps (≥ w16_phase_min_taps = "
            f"{t.w16_phase_min_taps}?), {px} output pixels (≥ w16_phase_min_pixels = "
            f"{t.w16_phase_min_pixels}?), {channels * g.sh * g.sw} streams (≤ "
            f"w16_phase_max_streams = {t.w16_phase_max_streams}?)")


def _w16_wgrad_fits(K, taps, channels, dtype, g, out_hw, force, t, note):
    """ext/direct16.h's ∂L/∂w: flat streams (_flat_streams), float32, one group,
    AVX2/AVX-512, at most w16_wgrad_max_k output channels, on output planes of at least
    w16_min_pixels (its sums run over the padded planes: on small ones the padding is much
    of the work) and with at least w16_min_taps taps (C/G·F_h·F_w: its copy of δ into
    streams is paid once for all of them); over x's phases, _phases_pay."""
    if force not in (None, "w16"):
        return False
    if dtype != np.float32 or g.groups != 1 or not _flat_streams(g):
        note("weight_grad", "w16: needs float32, one group and stride 1 (or one stride along "
                            "both axes, dilation 1)")
        return False
    if force == "w16":
        note("weight_grad", "w16: forced")
        return True
    px = out_hw[0] * out_hw[1]
    ok = (_SIMD_LEVEL > 0 and K <= t.w16_wgrad_max_k and px >= t.w16_min_pixels
          and taps >= t.w16_min_taps and _phases_pay(g, taps, px, channels, t))
    note("weight_grad", f"w16 {'takes it' if ok else 'declines'}: SIMD level {_SIMD_LEVEL} (> 0?), "
                        f"K = {K} (≤ {t.w16_wgrad_max_k}?), output {out_hw[0]}×{out_hw[1]} = "
                        f"{px} pixels (≥ {t.w16_min_pixels}?), {taps} taps "
                        f"(≥ {t.w16_min_taps}?)" + _phases_note(g, taps, px, channels, t))
    return ok


_MASK_NOTE = "the mask recorded in forward routes δ: one kernel for every geometry"


def _pool_plan(op, g, force, t, why):
    """Pooling: the specialised kernels where the geometry is theirs ('2x2', 'plane', max
    pooling's '3x3'), unless 'direct' or 'taps' is forced; max pooling's other windows by
    the tap table ('taps') where it has at most maxpool_taps_max_entries entries, else the
    table walk; 2×2 tilings of outputs narrower than maxpool_2x2_min_ow by the tap table
    too. Forced, 'taps' takes every max pooling whose windows all have a real input (2×2
    tilings and 3×3 at stride 1 included)."""
    note = _notes(why)
    if op == "max_pool2d" and g.path == "3x3" and force in (None, "3x3"):
        note("forward", "3×3 windows at stride 1 with one pixel of padding: separable, rows "
                        "then columns ('3x3')")
        note("input_grad", _MASK_NOTE)
        return Paths("3x3", "direct", None)
    short = g.path == "2x2" and g.out[1] < t.maxpool_2x2_min_ow     # a tiling of short rows
    if op == "max_pool2d" and (force == "taps" or (force is None and (
            short or g.path not in ("2x2", "3x3")))):
        entries = g.window_taps * g.taps_group * g.out[0] * g.out[1]
        ok = g.window_taps > 0 and (force == "taps" or entries <= t.maxpool_taps_max_entries)
        if short and force is None:
            note("forward", f"a 2×2 tiling of outputs {g.out[1]} wide (< maxpool_2x2_min_ow = "
                            f"{t.maxpool_2x2_min_ow}?): rows too short for '2x2'")
        note("forward", "taps: forced" if force == "taps" and ok else
             f"taps {'takes it' if ok else 'declines'}: {g.window_taps} inputs in the largest "
             f"window (> 0: every window has a real input?) × {g.taps_group * g.out[0] * g.out[1]} "
             f"outputs of {g.taps_group} plane(s), a table of {entries} "
             f"entries (≤ {t.maxpool_taps_max_entries}?)")
        if ok:
            note("input_grad", _MASK_NOTE)
            return Paths("taps", "direct", None)
    if force == "direct" or g.path == "general":
        path = "direct"
        note("forward", "forced 'direct'" if g.path != "general" else "windows from the per-axis tables")
    elif op == "max_pool2d" and g.path == "plane":
        path = "direct"                   # (max pooling has no whole-plane kernel)
    else:
        path = g.path
        note("forward", {"2x2": "2×2 windows at stride 2 tiling the plane",
                         "3x3": "3×3 windows at stride 1 with one pixel of padding"}.get(
                             path, "one window covering the whole plane"))
    if op == "max_pool2d":               # the backward reads the mask: one kernel for every geometry
        note("input_grad", _MASK_NOTE)
        return Paths(path, "direct", None)
    return Paths(path, path, None)


def _norm_path(x):
    """BatchNorm's path for input x: 'fused' (ext/batchnorm.pyx) for float32/float64 input
    with at least one value, unless 'direct' is forced; else 'direct' (ops/norm.py's NumPy
    formulas, which the fused kernels are tested against)."""
    if _state.get().force == "direct" or x.dtype not in (np.float32, np.float64) or x.size == 0:
        return "direct"
    return "fused"


# ---- for people: which path, and why -------------------------------------------------------

def choose(x_shape, w_shape=None, *, op="conv2d", stride=None, padding=0, dilation=1, groups=1,
           dtype=np.float32, output_padding=0, kernel_size=None, ceil_mode=False,
           count_include_pad=True, divisor_override=None):
    """The `Paths` (forward, input_grad, weight_grad) a call with these shapes and arguments
    takes here and now (under the `use()` in effect).

    op: 'conv2d' (w_shape (K, C/G, F_h, F_w)), 'conv_transpose2d' (w_shape (C_in, C_out/G,
    F_h, F_w)), 'max_pool2d' or 'avg_pool2d' (kernel_size instead of w_shape). The other
    arguments as in the functions of the same name (stride None: 1 for the convolutions,
    kernel_size for the poolings); they are validated the same way.
    """
    return _choose(x_shape, w_shape, op, stride, padding, dilation, groups, dtype,
                   output_padding, kernel_size, ceil_mode, count_include_pad, divisor_override)


def explain(x_shape, w_shape=None, *, op="conv2d", stride=None, padding=0, dilation=1, groups=1,
            dtype=np.float32, output_padding=0, kernel_size=None, ceil_mode=False,
            count_include_pad=True, divisor_override=None):
    """`choose()`'s answer with the reasons: an `Explanation` (the `Paths` and `.why`, a
    dict of reasons per pass), printed as a few lines. Arguments as for `choose`.
    ``print(kernels.explain((64, 1, 28, 28), (6, 1, 5, 5), padding=2))`` shows LeNet's
    first layer (which paths depend on the CPU and on whether OpenBLAS was found);
    under `use` the forced path is the answer:

        >>> with kernels.use("direct"):
        ...     kernels.explain((64, 1, 28, 28), (6, 1, 5, 5), padding=2).paths
        Paths(forward='direct', input_grad='direct', weight_grad='direct')
    """
    why = {}
    paths = _choose(x_shape, w_shape, op, stride, padding, dilation, groups, dtype,
                    output_padding, kernel_size, ceil_mode, count_include_pad, divisor_override,
                    why)
    return Explanation(op, tuple(x_shape), w_shape if w_shape is None else tuple(w_shape),
                       paths, why)


_FILES = {"direct": "ext/conv_direct.pyx", "gemm": "ext/conv_im2col.pyx + np.matmul",
          "blas": "ext/conv_im2col.pyx + OpenBLAS", "winograd": "ext/winograd.pyx",
          "winograd4": "ext/winograd.pyx",
          "k16": "ext/conv_direct16.pyx, direct16.h", "k32": "ext/conv_direct16.pyx, direct16.h",
          "w16": "ext/conv_direct16.pyx, direct16.h",
          "pointwise": "ext/conv_pointwise.pyx + OpenBLAS", "depthwise": "ext/conv_depthwise.pyx",
          "hwnc": "ext/conv_hwnc.pyx + OpenBLAS"}
_PASS_NAMES = {"forward": "forward", "input_grad": "∂L/∂x", "weight_grad": "∂L/∂w"}


class Explanation:
    """`choose()`'s `Paths` (also as .forward, .input_grad, .weight_grad) with the reasons
    (.why: pass -> list of sentences); str() and repr() give a short report."""

    def __init__(self, op, x_shape, w_shape, paths, why):
        self.op, self.x_shape, self.w_shape, self.paths, self.why = op, x_shape, w_shape, paths, why
        self.forward, self.input_grad, self.weight_grad = paths

    def __str__(self):
        pool = self.op.endswith("pool2d")
        lines = [f"{self.op}: input {self.x_shape}"
                 + ("" if self.w_shape is None else f", weight {self.w_shape}")]
        for which in ("forward", "input_grad", "weight_grad"):
            path = getattr(self.paths, which)
            if path is None:
                continue
            where = "ext/pool.pyx" if pool else _FILES[path]
            lines.append(f"  {_PASS_NAMES[which]:8s} {path:9s} ({where})")
            reasons = list(self.why.get(which, []))
            if not pool and path in ("direct", "gemm", "blas", "pointwise", "depthwise"):
                reasons += self.why.get("base", [])
            lines += [f"             - {r}" for r in reasons]
        return "\n".join(lines)

    __repr__ = __str__


def _choose(x_shape, w_shape, op, stride, padding, dilation, groups, dtype, output_padding,
            kernel_size, ceil_mode, count_include_pad, divisor_override, why=None):
    """Validate as the op does (the same code), then ask _plan."""
    from .ops import conv_args as _ca, conv_dispatch as _cd, pool as _pool
    x_shape = tuple(int(n) for n in x_shape)
    dtype = np.dtype(dtype)
    x = np.broadcast_to(np.zeros((), dtype), x_shape)            # shapes only, no memory
    if op in ("max_pool2d", "avg_pool2d"):
        g = _pool.pool_geometry(op, _pool._input(op, x), kernel_size, stride, padding, dilation,
                                ceil_mode, count_include_pad, divisor_override)
        return _plan(op, None, None, dtype, g, None, why)
    if op not in ("conv2d", "conv_transpose2d"):
        raise ValueError(f"kernels.choose(): op must be 'conv2d', 'conv_transpose2d', "
                         f"'max_pool2d' or 'avg_pool2d', got {op!r}")
    if w_shape is None:
        raise ValueError(f"kernels.choose(): {op} needs w_shape")
    stride = 1 if stride is None else stride
    w = np.broadcast_to(np.zeros((), dtype), tuple(int(n) for n in w_shape))
    cdt = _ca.compute_dtype(x, w)
    x4 = x_shape if len(x_shape) == 4 else (1,) + x_shape
    if op == "conv2d":
        _, _, _, S, P, D, G, out_shape = _ca.conv2d_args("conv2d", x, w, None, stride, padding,
                                                         dilation, groups)
        geom = _cd.Geom(S, (P[0], P[2]), D, G)
        return _plan(op, x4, w.shape, cdt, geom, out_shape[-2:], why)
    # conv_transpose2d is the adjoint of the conv2d from its output to its input: its
    # forward is that conv's ∂L/∂x, its ∂L/∂x that conv's forward
    _, _, _, S, P, _, D, G, out_shape = _ca.conv_transpose2d_args(
        "conv_transpose2d", x, w, None, stride, padding, output_padding, groups, dilation)
    y4 = out_shape if len(out_shape) == 4 else (1,) + out_shape
    adj_why = None if why is None else {}
    p = _plan("conv2d", y4, w.shape, cdt, _cd.Geom(S, P, D, G), x4[-2:], adj_why)
    if why is not None:
        for a, b in (("forward", "input_grad"), ("input_grad", "forward"), ("base", "base")):
            if a in adj_why:
                why[b] = adj_why[a]
    return Paths(p.input_grad, p.forward, p.weight_grad)


# ---- block sizes (read by ops/conv_dispatch.py) ---------------------------------------------

def _blas_blocks(N, R, OH, OW, itemsize, nt):
    """(samples, output rows) per block of the 'blas' path, R = C·F_h·F_w im2col rows.

    Tiny images (OH·OW < blas_batch_below): just enough whole samples per block for
    blas_batch_columns output pixels, leaving every thread a block (the GEMM result then
    needs a copy to NCHW). Otherwise one sample's output rows, the GEMM writing into y in
    place: an im2col block (R, Lc) of Lc ≈ blas_block_bytes / (R·itemsize) columns, at
    least blas_min_columns (a fat GEMM). RESULTS.md: blas_blocks."""
    t = _state.get().tuning
    L = OH * OW
    if L < t.blas_batch_below and t.blas_batch_columns >= 2 * L:
        return max(1, min(t.blas_batch_columns // L, -(-N // nt))), OH
    cols = max(t.blas_block_bytes // max(R * itemsize, 1), t.blas_min_columns)
    return 1, max(1, min(OH, cols // OW))


def _depthwise_channels_last(out_hw, C, stride=(1, 1)):
    """(True, channels per block) when the 'depthwise' kernels should run channels-last
    (small output planes: rows of 2–8 pixels fill no vector, channels do) — output planes
    of at most depthwise_cl_max_pixels, or depthwise_cl_s1_max_pixels at stride 1 —, else
    (False, 0). RESULTS.md: depthwise."""
    t = _state.get().tuning
    most = t.depthwise_cl_s1_max_pixels if tuple(stride) == (1, 1) else 0
    if out_hw[0] * out_hw[1] > max(t.depthwise_cl_max_pixels, most):
        return False, 0
    return True, min(C, 64)


def _depthwise_lanes(in_hw, out_hw, khw, dtype):
    """Whether the 'depthwise' kernels should hold each plane in one 16-lane vector
    (ext/conv_depthwise.pyx "lanes"): float32, ≤ LANES_MAX_TAPS (25) taps, input planes of
    depthwise_lanes_min_pixels to depthwise_lanes_max_pixels (≤ 16) pixels, output planes of
    at most that, SIMD level ≥ depthwise_lanes_min_simd. RESULTS.md: depthwise_lanes_*."""
    t = _state.get().tuning
    most, n_in = min(t.depthwise_lanes_max_pixels, 16), in_hw[0] * in_hw[1]
    return (dtype == np.float32 and khw[0] * khw[1] <= _dwk.LANES_MAX_TAPS
            and _SIMD_LEVEL >= t.depthwise_lanes_min_simd
            and t.depthwise_lanes_min_pixels <= n_in <= most and out_hw[0] * out_hw[1] <= most)


def _flat_axis(n_in, n_out, extent, pad):
    """The length of one axis of w16's flat grid (a row's positions; a sample's rows): room
    for n_out outputs and for the pad zeros and input entries the taps reach, but for the
    zeros past the input's end only where the next row's (sample's) leading pad zeros do
    not already stand in for them. Read along the stream, the taps of an output at the
    end of a row overhang into the next row's first entries: those are its `pad` zeros
    whenever the overhang is no longer, so a 'same' 3×3 layer's rows are W + 1 long, not
    W + 2 (7×7 planes: 64 positions, not 81)."""
    need = n_out + extent - 1                       # x_pad entries the outputs read
    data = max(0, min(n_in, need - pad))            # ... of which input entries
    return max(n_out, pad + data, need - pad)


def _flat_grid(in_hw, out_hw, khw, g):
    """(H_p, W_p): rows per sample and positions per row of w16's flat streams at stride 1
    (ext/direct16.h; _flat_axis per axis) for a correlation of in_hw planes into out_hw
    with a (kh, kw) kernel, geometry g (top/left padding, dilation)."""
    return (_flat_axis(in_hw[0], out_hw[0], (khw[0] - 1) * g.dh + 1, g.ph),
            _flat_axis(in_hw[1], out_hw[1], (khw[1] - 1) * g.dw + 1, g.pw))


def _flat_streams(g):
    """Whether w16's flat streams can run a correlation of geometry g: at stride 1 (any
    dilation), or at a stride s > 1 the same along both axes with dilation 1 — then over
    x's s×s phases (ext/conv_direct16.pyx _phase_streams), where every tap is a stride-1
    shift of one phase."""
    return (g.sh, g.sw) == (1, 1) or (g.sh == g.sw and (g.dh, g.dw) == (1, 1))


def _flat_layout(in_hw, out_hw, khw, g):
    """(H_p, W_p, s): the grid of w16's flat streams — the padded planes at stride 1
    (_flat_grid), s = 1; at stride s > 1 the planes of x's phases, H_p = OH + (F_h − 1) div s
    rows of W_p = OW + (F_w − 1) div s (what the taps of the outputs reach in a phase)."""
    if g.sh == 1:
        return _flat_grid(in_hw, out_hw, khw, g) + (1,)
    s = g.sh
    return out_hw[0] + (khw[0] - 1) // s, out_hw[1] + (khw[1] - 1) // s, s


def _flat_fill(in_hw, out_hw, khw, g):
    """The share of w16's flat grid positions that are outputs: OH·OW / (H_p·W_p)."""
    Hp, Wp, _ = _flat_layout(in_hw, out_hw, khw, g)
    return out_hw[0] * out_hw[1] / (Hp * Wp)


def _pointwise_batched(L, C, K):
    """Whether the 'pointwise' passes of a (K, C, 1, 1) weight on planes of L pixels take
    the whole batch in one product (ext/conv_pointwise.pyx: conv2d_*_pointwise_batched)
    rather than one per sample: L ≤ pointwise_batch_max_pixels, or a weight large against
    the plane, K·C ≥ pointwise_batch_weight_ratio · L·(C + K) (a per-sample product packs
    all of w again for a plane of a few columns). RESULTS.md: pointwise_batch_max_pixels,
    pointwise_batch_weight_ratio."""
    t = _state.get().tuning
    return L <= t.pointwise_batch_max_pixels or K * C >= t.pointwise_batch_weight_ratio * L * (C + K)


def _w16_wgrad_blocks(N, plane, nt):
    """(samples per group, output channels per block) of the w16 ∂L/∂w: groups whose δ
    streams of one block (kb channels × the group's padded planes) stay about
    w16_wgrad_block_bytes, so that the taps re-read them from L1; every thread the same
    number of groups, as near equal in size as that allows.
    kb = 8 with AVX-512 (3·8 accumulators in 32 registers), else 4."""
    t = _state.get().tuning
    kb = 8 if _SIMD_LEVEL >= 2 else 4
    S = max(1, min(t.w16_wgrad_block_bytes // (kb * plane * 4), -(-N // nt)))
    per = -(-N // (nt * S))                # groups per thread; then the same S for all
    return -(-N // (nt * per)), kb


def _w16_flat_blocks(N, plane, nt):
    """(samples per group, output channels per block, positions per run) of the w16
    forward at stride 1 (ext/direct16.h mg_conv_flat): groups of at least
    w16_flat_min_positions padded-grid positions (small planes share a stream), every
    thread the same number of groups. kb × run = 8 × 48 with AVX-512 (24 accumulators in
    32 registers), else 4 × 32."""
    t = _state.get().tuning
    kb, run = (8, 48) if _SIMD_LEVEL >= 2 else (4, 32)
    S = max(1, min(-(-t.w16_flat_min_positions // plane), -(-N // nt)))
    per = -(-N // (nt * S))
    return -(-N // (nt * per)), kb, run


def _k32_blocks(N, sample_floats, T, nt):
    """(samples per group, taps per chunk) of the k32 forward (ext/direct16.h mg_conv_k32):
    as many padded samples a group as fit in k32_group_bytes, evened out so that every
    thread gets whole groups of one size (its ceil(N / nt) samples in as few groups as
    fit); the T taps in equal chunks of at most k32_chunk_taps (a setting below 1 counts as 1)."""
    t = _state.get().tuning
    per_thread = -(-N // nt)
    most = max(1, t.k32_group_bytes // (4 * sample_floats))
    chunks = -(-T // max(1, t.k32_chunk_taps))
    return -(-per_thread // -(-per_thread // most)), -(-T // chunks)


def _blas_dw_rows(Kg, CgKK):
    """True: the 'blas' ∂L/∂w as δ (Kg, cols) @ im2col(x)ᵀ, the rows of ∂L/∂w itself (the
    threads' partials summed, nothing to transpose); False: as im2col(x) @ δᵀ, ∂L/∂wᵀ,
    transposed back by sum_transpose. RESULTS.md: blas_dw_rows_min_k."""
    return Kg >= _state.get().tuning.blas_dw_rows_min_k


def _blas_shift_rows(x_shape, kh, kw, OH, OW, g, rows):
    """Room for the shifted input rows of ext/conv_im2col.pyx's _im2col_shifted
    (C·F_w·S_h·U·OW, U rows per plane for blocks of `rows` output rows), or 0 for the
    row-by-row gather. The two-step im2col pays for short output rows (OW ≤ shift_max_ow),
    unless they are as wide as the input rows at stride 1 (one copy per tap then needs no
    shifting). RESULTS.md: shift_max_ow."""
    _, C, H, W = x_shape
    if OW > _state.get().tuning.shift_max_ow or (g.sh == 1 and g.sw == 1 and W == OW and OW <= 32):
        return 0
    U = -(-min(H, (rows - 1) * g.sh + (kh - 1) * g.dh + 1) // g.sh)
    return C * kw * g.sh * U * OW


def _gemm_chunk(N, per_sample_bytes):
    """'gemm': samples per chunk so that the workspace stays within workspace_bytes; and
    the threads for the copies around the matmuls."""
    t = _state.get().tuning
    return max(1, min(N, t.workspace_bytes // max(per_sample_bytes, 1))), t.gemm_helper_threads


_WINO4_BUILD = _wg.vector_transforms()      # this build has ext/winograd4.h's AVX-512 code
_WINOK_BUILD = _wg.vector_kernel_transforms()   # … and ext/wino_kernels.h's


def _winograd_kernels_vector(dtype, weights):
    """'winograd', 'winograd4': whether the kernel transforms (G·w·Gᵀ, and ∂L/∂w's adjoint)
    take ext/wino_kernels.h's 16-kernel vectors — a build with them, SIMD level 2, float32,
    16 × the `weights` (w's elements) below 2³¹ (the gathers' 32-bit lane offsets) —
    instead of winograd.pyx's loops: the same numbers, bit for bit, 1.3–6× faster on
    ResNet-18's layers."""
    return (_WINOK_BUILD and _SIMD_LEVEL >= 2 and np.dtype(dtype) == np.float32
            and 16 * weights < 2 ** 31)


def _winograd4_vector(TW, dtype, elements):
    """'winograd4': whether its tile transforms take ext/winograd4.h's 16-lane gathers and
    scatters (a build with them, SIMD level 2, float32, at most winograd4_vector_max_tw
    tiles a row, arrays of fewer than 2³¹ `elements`: 32-bit offsets)."""
    return (_WINO4_BUILD and _SIMD_LEVEL >= 2 and np.dtype(dtype) == np.float32
            and elements < 2 ** 31 and TW <= _state.get().tuning.winograd4_vector_max_tw)


def _winograd4_rows(TW, dtype):
    """'winograd4': whether its input transform takes ext/winograd4.h's tile-row vectors
    (mg_wino4_input_rows) — a build with them, SIMD level 2, float32, at least
    winograd4_rows_min_tw tiles a row (where the gathers are not taken) — instead of
    winograd.pyx's scalar loops."""
    return (_WINO4_BUILD and _SIMD_LEVEL >= 2 and np.dtype(dtype) == np.float32
            and TW >= _state.get().tuning.winograd4_rows_min_tw)


def _winograd4_elements(N, C, K, out_hw):
    """An upper bound on the elements of a 3×3, stride-1 layer's x, y and δ (each plane at
    most two rows and columns larger than the output)."""
    return N * max(C, K) * (out_hw[0] + 2) * (out_hw[1] + 2)


def _winograd_wgrad_points(C, K, tiles, T2, itemsize, nt):
    """Whether 'winograd'/'winograd4''s ∂L/∂w of a layer with C input and K output channels,
    `tiles` output tiles in all and T² points splits its GEMMs by point
    (ext/winograd.pyx conv2d_weight_grad_winograd_points) rather than by block: when the
    threads' partial sums, nt·T²·K·C values, are at least winograd_wgrad_points_ratio times
    the transformed tiles, T²·(C + K)·tiles, and those fit in workspace_bytes."""
    t = _state.get().tuning
    tiles_bytes = T2 * (C + K) * tiles * itemsize
    return (nt * K * C >= t.winograd_wgrad_points_ratio * (C + K) * tiles
            and tiles_bytes <= t.workspace_bytes)


def _winograd_rows(N, TH, TW, nt, m=2, wgrad_channels=0):
    """'winograd' (m = 2) / 'winograd4' (m = 4): tile rows per block, for about
    winograd_block_tiles 2×2 tiles (winograd4_block_tiles 4×4 tiles) per block, split
    evenly over the threads (tile rows across samples: small images share a block).
    wgrad_channels: for F(4×4)'s ∂L/∂w, min(C, K) — below winograd4_wgrad_channels the
    blocks are winograd4_wgrad_channels // min(C, K) times larger."""
    t = _state.get().tuning
    tiles = t.winograd_block_tiles if m == 2 else t.winograd4_block_tiles
    if m == 4 and 0 < wgrad_channels < t.winograd4_wgrad_channels:
        tiles *= t.winograd4_wgrad_channels // wgrad_channels
    per = max(1, round(N * TH * TW / (nt * tiles)))
    return -(-N * TH // (nt * per))
