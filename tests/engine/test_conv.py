"""Convolution kernels of convengine._C (through convengine.kernels.conv, which only normalises
arguments): every pass against the float64 NumPy reference over sweeps of shapes and options,
under every kernel variant and 1 or 2 threads; the bounded workspace; the adjoint identities; and
the boundary checks that keep inconsistent arrays away from the kernels."""

import os
import subprocess
import sys

import numpy as np
import pytest

import convengine as ce
from convengine import _C
from convengine.backends import reference as R
from convengine.kernels import conv as K
from conftest import tolerance

# One convolution per entry: (name, x shape, weight shape, stride, padding, dilation, groups).
# padding may be an int, per-dim ints or (before, after) pairs. Sizes are small (the suite runs
# on two shared cores) but cover every algorithm and edge: odd and non-square sizes, batch 1,
# one input channel, a kernel larger than the unpadded input, strides, dilation, groups,
# depthwise (with a channel multiplier), 1x1 (the pure-GEMM path, with and without stride), 1-D
# and 3-D, asymmetric padding.
CASES = [
    ("3x3", (2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1),
    ("3x3_nopad_batch1", (1, 5, 6, 5), (7, 5, 3, 3), 1, 0, 1, 1),
    ("one_channel", (3, 1, 9, 8), (6, 1, 3, 3), 1, 1, 1, 1),
    ("kernel_gt_input", (2, 2, 3, 2), (3, 2, 5, 4), 1, (2, 2), 1, 1),
    ("stride2", (2, 4, 9, 8), (5, 4, 3, 3), 2, 1, 1, 1),
    ("stride_2x3_rect", (2, 3, 11, 10), (4, 3, 3, 2), (2, 3), (1, 0), 1, 1),
    ("dilation2", (2, 3, 10, 9), (4, 3, 3, 3), 1, 2, 2, 1),
    ("dilation_stride", (1, 2, 13, 11), (3, 2, 3, 3), 2, 1, (2, 3), 1),
    ("groups2", (2, 4, 7, 6), (6, 2, 3, 3), 1, 1, 1, 2),
    ("groups3_stride", (2, 6, 8, 9), (9, 2, 3, 3), 2, 1, 1, 3),
    ("depthwise", (2, 5, 9, 8), (5, 1, 3, 3), 1, 1, 1, 5),
    ("depthwise_mult2", (2, 4, 7, 10), (8, 1, 3, 3), 1, 1, 1, 4),
    ("depthwise_stride2_dil", (2, 3, 11, 9), (3, 1, 3, 3), 2, 2, 2, 3),
    ("depthwise_wide", (1, 2, 4, 70), (2, 1, 3, 5), 1, (1, 2), 1, 2),
    ("depthwise_dil2_mult2", (2, 3, 9, 20), (6, 1, 3, 3), 1, 2, 2, 3),
    # 3x3 rows of whole and partial vectors, one and two blocks of 64 columns, odd and even
    # heights, no padding, wide padding and W dilation (the border-load patterns of the
    # AVX-512 kernels)
    ("depthwise_w56", (2, 3, 7, 56), (3, 1, 3, 3), 1, 1, 1, 3),
    ("depthwise_w64", (1, 2, 6, 64), (2, 1, 3, 3), 1, 1, 1, 2),
    ("depthwise_w75_pad2", (1, 2, 5, 75), (2, 1, 3, 3), 1, 2, 1, 2),
    ("depthwise_w40_dilw3", (1, 2, 6, 40), (2, 1, 3, 3), 1, (1, 3), (1, 3), 2),
    ("depthwise_w17_nopad", (2, 2, 5, 17), (2, 1, 3, 3), 1, 0, 1, 2),
    ("depthwise_mult3_w40", (1, 2, 6, 40), (6, 1, 3, 3), 1, 1, 1, 2),
    ("depthwise_mult2_h7", (1, 2, 7, 33), (4, 1, 3, 3), 1, 1, 1, 2),
    ("depthwise_rows_s2", (1, 2, 9, 20), (2, 1, 3, 3), (2, 1), 1, 1, 2),
    ("pointwise", (2, 6, 5, 7), (8, 6, 1, 1), 1, 0, 1, 1),
    ("pointwise_groups", (2, 6, 5, 4), (4, 3, 1, 1), 1, 0, 1, 2),
    ("pointwise_stride2", (2, 4, 7, 8), (6, 4, 1, 1), 2, 0, 1, 1),
    ("pointwise_padded", (1, 3, 4, 4), (2, 3, 1, 1), 1, 1, 1, 1),
    ("asymmetric_pad", (2, 3, 8, 7), (4, 3, 4, 3), 1, ((1, 2), (0, 1)), 1, 1),
    ("big_kernel_7x7_s2", (1, 3, 17, 15), (8, 3, 7, 7), 2, 3, 1, 1),
    ("wide_row", (1, 2, 3, 75), (3, 2, 3, 3), 1, 1, 1, 1),
    ("conv1d", (3, 4, 17), (5, 4, 3), 1, 1, 1, 1),
    ("conv1d_stride_dil", (2, 2, 20), (4, 2, 4), 3, 2, 2, 1),
    ("conv1d_depthwise", (2, 3, 19), (6, 1, 5), 1, 2, 1, 3),
    ("conv3d", (2, 2, 5, 6, 7), (3, 2, 3, 3, 3), 1, 1, 1, 1),
    ("conv3d_stride_aniso", (1, 3, 6, 7, 5), (4, 3, 3, 2, 3), (2, 1, 2), (1, 0, 1), 1, 1),
    ("conv3d_groups_dil", (1, 4, 5, 6, 6), (4, 2, 2, 3, 3), 1, (0, 2, 1), (1, 2, 1), 2),
    ("conv3d_depthwise", (1, 3, 5, 5, 6), (3, 1, 3, 3, 3), 1, 1, 1, 3),
    # Rows of 12 or more output pixels take the direct (packing-free) tiles where the ISA has
    # them: whole and partial 14-pixel tiles, partial 32-channel blocks, stride 2 with
    # dilation, groups, 3-D bands over depth, asymmetric and larger-than-kernel padding.
    ("direct_ow14", (2, 5, 9, 14), (7, 5, 3, 3), 1, 1, 1, 1),
    ("direct_ow29_oc40", (1, 3, 5, 29), (40, 3, 3, 3), 1, 1, 1, 1),
    ("direct_stride2_dil2", (2, 4, 9, 31), (6, 4, 3, 3), 2, 2, 2, 1),
    ("direct_groups3", (2, 6, 6, 20), (9, 2, 3, 3), 1, 1, 1, 3),
    ("direct_3d", (1, 3, 4, 5, 16), (4, 3, 3, 3, 3), 1, 1, 1, 1),
    ("direct_asym_pad", (1, 2, 5, 20), (3, 2, 2, 4), 1, ((1, 0), (2, 1)), 1, 1),
    ("direct_pad_gt_kernel", (1, 2, 4, 16), (3, 2, 1, 3), 1, (1, 2), 1, 1),
    ("direct_conv1d", (2, 3, 40), (5, 3, 5), 1, 2, 1, 1),
    ("direct_ow7", (2, 8, 7, 7), (40, 8, 3, 3), 1, 1, 1, 1),
    ("direct_ow9_oc8", (1, 4, 9, 9), (8, 4, 3, 3), 1, 1, 1, 1),
    ("direct_ow6_s2", (1, 5, 11, 12), (20, 5, 3, 3), 2, 1, 1, 1),
    # conv_gemm on small images (rows under 12 pixels): more than one block of k (K > KC) with
    # micro-tiles straddling images, threads splitting columns (n > m) or rows (n <= m; both
    # above the 2 MFLOP that get a second thread); channels not a multiple of MR; flipped
    # weights cut at the ends of a block of k; 5x5 (flipped weights without permutes); strided
    # 1x1 with short rows and with padding; groups with batch 1; dilation.
    ("gemm_small_deep", (5, 48, 5, 5), (20, 48, 3, 3), 1, 1, 1, 1),
    ("gemm_small_flipped_deep", (7, 13, 6, 5), (47, 13, 3, 3), 1, 1, 1, 1),
    ("gemm_rows", (4, 48, 3, 4), (50, 48, 3, 3), 1, 1, 1, 1),
    ("gemm_small_5x5", (2, 8, 6, 6), (10, 8, 5, 5), 1, 2, 1, 1),
    ("gemm_1x1_s2_short_rows", (2, 6, 5, 5), (7, 6, 1, 1), 2, 0, 1, 1),
    ("gemm_1x1_s2_padded", (1, 5, 6, 7), (9, 5, 1, 1), 2, 1, 1, 1),
    ("gemm_small_groups_batch1", (1, 12, 5, 5), (18, 4, 3, 3), 1, 1, 1, 3),
    ("gemm_small_dilation", (2, 6, 7, 7), (8, 6, 3, 3), 1, 2, 2, 1),
    # More columns than one NC block a thread: all of A packed once and shared (3x3 with
    # several blocks of k; strided 1x1 above the 2 MFLOP that get a second thread).
    ("gemm_shared_a_deep", (16, 48, 9, 9), (8, 48, 3, 3), 1, 1, 1, 1),
    ("gemm_shared_a_1x1_s2", (4, 16, 64, 64), (16, 16, 1, 1), 2, 0, 1, 1),
    # Stride 2 with rows of 16+ output pixels (the weight gradient's whole-vector loads).
    ("stride2_wide_rows", (2, 3, 9, 41), (4, 3, 7, 7), 2, 3, 1, 1),
    # Strided backward-input by phases (16+ input channels, phases 12+ wide): stride 2 and 3,
    # dilation, a 1x1 kernel (phases without taps), 2x2 stride 2, 3-D.
    ("phases_s2_3x3", (2, 16, 9, 27), (8, 16, 3, 3), 2, 1, 1, 1),
    ("phases_k3s2_dil2", (1, 16, 6, 26), (4, 16, 2, 2), 2, 1, 2, 1),
    ("phases_s3_dil2", (1, 16, 7, 40), (3, 16, 3, 3), (1, 3), (1, 2), 2, 1),
    ("phases_1x1_s2", (2, 16, 5, 28), (8, 16, 1, 1), 2, 0, 1, 1),
    ("phases_groups", (1, 32, 4, 26), (4, 16, 3, 3), 2, 1, 1, 2),
    ("phases_3d", (1, 16, 4, 5, 26), (4, 16, 3, 3, 3), 2, 1, 1, 1),
    # W stride 2 on the pixel-vector tiles (bands split by column parity): odd and even W
    # padding, asymmetric padding, kernels 2 to 5 wide, 16 channels or fewer, 40 channels on
    # 31-pixel rows, groups, 3-D.
    ("split_s2_oc16_pad_odd", (2, 5, 9, 33), (16, 5, 3, 3), 2, 1, 1, 1),
    ("split_s2_k4_pad2", (1, 3, 7, 40), (8, 3, 4, 4), 2, 2, 1, 1),
    ("split_s2_oc40_ow31", (1, 4, 6, 61), (40, 4, 3, 3), 2, 1, 1, 1),
    ("split_s2_k2_groups", (2, 8, 6, 56), (12, 4, 2, 2), 2, 0, 1, 2),
    ("split_s2_asym", (1, 4, 8, 37), (10, 4, 3, 5), 2, ((1, 0), (3, 2)), 1, 1),
    ("split_s2_3d", (1, 3, 5, 6, 34), (8, 3, 3, 3, 3), 2, 1, 1, 1),
    # Weights over 1 MiB and fewer images than 2 per thread: weight blocks per thread (batch 1).
    ("direct_weight_major", (1, 192, 5, 14), (192, 192, 3, 3), 1, 1, 1, 1),
    # W stride 2 in 2-D and 1-D: both W phases of a tile computed together and stored
    # interleaved (phase-pairs-direct-tiles): odd widths (the second phase one column short),
    # 5x5 and 5x4 kernels, a partial 32-channel block, H stride 3 with dilation, 1-D, 2 threads.
    ("pairs_5x5_oc40_odd", (2, 40, 9, 29), (24, 40, 5, 5), 2, 2, 1, 1),
    ("pairs_5x4_pad", (1, 40, 6, 29), (8, 40, 5, 4), 2, (0, 3), 1, 1),
    ("pairs_s3x2_dil", (1, 16, 7, 40), (3, 16, 3, 3), (3, 2), (1, 2), (2, 1), 1),
    ("pairs_1d", (2, 16, 31), (8, 16, 3), 2, 1, 1, 1),
    ("pairs_threads", (2, 32, 12, 30), (32, 32, 3, 3), 2, 1, 1, 1),
    # 16 output channels or fewer at stride 1 (forward; backward-input with 16 or fewer input
    # channels): tiles of 8 channels x 3 pixel vectors, rows of partial vectors, a second
    # partial half of channels, tiles running across rows and planes, dilation, 3-D, 2 threads.
    ("pix_oc12_ow33", (2, 5, 6, 33), (12, 5, 3, 3), 1, 1, 1, 1),
    ("pix_oc8_dil2", (1, 4, 5, 20), (8, 4, 3, 3), 1, 2, 2, 1),
    ("pix_oc16_3d", (1, 16, 3, 5, 17), (16, 16, 3, 3, 3), 1, 1, 1, 1),
    ("pix_threads", (2, 32, 16, 30), (16, 32, 3, 3), 1, 1, 1, 1),
]
CASE_IDS = [c[0] for c in CASES]
# The cases also run under every kernel variant and thread count.
ISA_CASES = ["3x3", "one_channel", "stride2", "dilation_stride", "groups3_stride", "depthwise",
             "depthwise_stride2_dil", "pointwise", "pointwise_stride2", "big_kernel_7x7_s2",
             "conv1d", "conv3d", "direct_ow29_oc40", "direct_stride2_dil2", "direct_3d",
             "direct_pad_gt_kernel", "phases_s2_3x3", "phases_s3_dil2", "direct_ow7",
             "direct_ow9_oc8", "gemm_small_deep", "gemm_small_flipped_deep", "gemm_rows",
             "gemm_small_5x5",
             "gemm_1x1_s2_short_rows", "gemm_1x1_s2_padded", "gemm_shared_a_deep",
             "gemm_shared_a_1x1_s2", "stride2_wide_rows", "pix_oc12_ow33", "pix_oc16_3d",
             "pix_threads", "pairs_5x5_oc40_odd", "pairs_1d", "pairs_threads",
             "direct_weight_major", "split_s2_oc16_pad_odd", "split_s2_oc40_ow31", "split_s2_asym",
             "depthwise_w56", "depthwise_w75_pad2", "depthwise_w40_dilw3", "depthwise_w17_nopad",
             "depthwise_mult3_w40", "depthwise_mult2_h7", "depthwise_rows_s2"]


def _case(name):
    return next(c for c in CASES if c[0] == name)


def _random(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


def assert_conv_close(actual, expected):
    """float32 kernel vs float64 reference: (rtol, atol) from the conftest table, atol relative
    to the largest |expected| (a sum of many products carries error in proportion to its
    terms, not to its value)."""
    rtol, atol = tolerance(np.float32, "conv_vs_reference")
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def _f64(a):
    return a.astype(np.float64)


def check_all_passes(rng, x_shape, w_shape, stride, padding, dilation, groups):
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    b = _random(rng, (w_shape[0],))
    args = (stride, padding, dilation, groups)
    y = K.conv_forward(x, w, b, *args)
    assert_conv_close(y, R.conv_forward(_f64(x), _f64(w), _f64(b), *args))
    g = _random(rng, y.shape)
    assert_conv_close(K.conv_backward_input(g, w, x.shape, *args),
                      R.conv_backward_input(_f64(g), _f64(w), x.shape, *args))
    assert_conv_close(K.conv_backward_weight(g, x, w.shape, *args),
                      R.conv_backward_weight(_f64(g), _f64(x), w.shape, *args))
    assert_conv_close(K.conv_backward_bias(g), R.conv_backward_bias(_f64(g)))
    return y


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv_passes_match_reference(rng, case):
    check_all_passes(rng, *case[1:])


@pytest.mark.parametrize("name", ISA_CASES)
def test_conv_passes_every_isa_and_thread_count(isa, threads, rng, name):
    check_all_passes(rng, *_case(name)[1:])


@pytest.mark.parametrize("name", ["3x3", "one_channel", "stride2", "depthwise", "groups2",
                                  "conv3d", "big_kernel_7x7_s2"])
def test_isa_variants_and_thread_counts_agree(rng, name):
    """Every variant and thread count gives the same answers (within float32 rounding)."""
    _, x_shape, w_shape, *args = _case(name)
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    g = _random(rng, K.conv_geometry("t", x_shape, w_shape, *args)[3])
    original_isa, original_threads = _C.isa(), ce.get_num_threads()
    results = []
    try:
        for isa in [i for i in _C.compiled_isas() if _C.cpu_supports(i)]:
            _C._select_isa(isa)
            for t in (1, 2):
                ce.set_num_threads(t)
                results.append((K.conv_forward(x, w, None, *args),
                                K.conv_backward_input(g, w, x_shape, *args),
                                K.conv_backward_weight(g, x, w_shape, *args)))
    finally:
        _C._select_isa(original_isa)
        ce.set_num_threads(original_threads)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_conv_close(a, _f64(b))


# --------------------------------------------------------------------------- #
# transposed convolution
# --------------------------------------------------------------------------- #

# (name, x shape, weight shape (C_in, C_out/groups, *k), stride, padding, output_padding,
#  dilation, groups)
TRANSPOSE_CASES = [
    ("k2s2_unet_up", (2, 4, 5, 6), (4, 3, 2, 2), 2, 0, 0, 1, 1),
    ("k3s1p1", (2, 3, 6, 5), (3, 4, 3, 3), 1, 1, 0, 1, 1),
    ("k3s2p1_outpad", (2, 3, 5, 4), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ("stride3_outpad2_rect", (1, 2, 4, 3), (2, 3, 3, 2), (3, 2), (1, 0), (2, 1), 1, 1),
    ("dilated_outpad", (1, 2, 5, 5), (2, 2, 3, 3), 1, 1, 1, 2, 1),
    ("groups2", (2, 4, 5, 5), (4, 3, 3, 3), 2, 1, 1, 1, 2),
    ("depthwise", (2, 3, 6, 5), (3, 1, 3, 3), 1, 1, 0, 1, 3),
    ("depthwise_stride2", (2, 3, 5, 4), (3, 2, 3, 3), 2, 1, 1, 1, 3),
    ("pointwise", (2, 4, 5, 3), (4, 5, 1, 1), 1, 0, 0, 1, 1),
    ("one_out_channel", (2, 3, 4, 4), (3, 1, 4, 4), 2, 1, 0, 1, 1),
    ("conv_transpose1d", (2, 3, 9), (3, 2, 4), 2, 1, 1, 1, 1),
    ("conv_transpose3d", (1, 3, 3, 4, 3), (3, 2, 2, 3, 3), (2, 1, 2), (0, 1, 1), (1, 0, 0), 1, 1),
    ("k2s2_wide", (1, 4, 3, 13), (4, 16, 2, 2), 2, 0, 0, 1, 1),
    ("phases_outpad", (1, 3, 4, 12), (3, 16, 3, 3), 2, 1, 1, 1, 1),
    # Kernel == stride with a W kernel of 2 (16+ output channels, input rows of 14+ pixels):
    # each tap a 1x1 convolution stored straight into the output (taps-direct-tiles), with
    # padding and output_padding (positions no tap reaches), partial 16-channel blocks, groups,
    # an anisotropic kernel, 1-D and 3-D, and one large enough for two threads.
    ("taps_k2s2", (2, 8, 3, 14), (8, 16, 2, 2), 2, 0, 0, 1, 1),
    ("taps_pad_outpad_odd", (1, 5, 4, 17), (5, 20, 2, 2), 2, 1, 1, 1, 1),
    ("taps_groups", (1, 6, 3, 15), (6, 16, 2, 2), 2, 0, (1, 0), 1, 2),
    ("taps_k3x2", (1, 4, 3, 16), (4, 17, 3, 2), (3, 2), (2, 1), (1, 1), 1, 1),
    ("taps_1d", (2, 4, 20), (4, 16, 2), 2, 0, 1, 1, 1),
    ("taps_3d", (1, 3, 2, 3, 14), (3, 16, 2, 2, 2), 2, (1, 0, 1), 0, 1, 1),
    ("taps_threads", (2, 32, 8, 30), (32, 33, 2, 2), 2, 0, 0, 1, 1),
]


def check_transpose(rng, x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    b = _random(rng, (w_shape[1] * groups,))
    args = (stride, padding, output_padding, dilation, groups)
    y = K.conv_transpose_forward(x, w, b, *args)
    assert_conv_close(y, R.conv_transpose_forward(_f64(x), _f64(w), _f64(b), *args))
    g = _random(rng, y.shape)
    assert_conv_close(K.conv_transpose_backward_input(g, w, x.shape, *args),
                      R.conv_transpose_backward_input(_f64(g), _f64(w), x.shape, *args))
    assert_conv_close(K.conv_transpose_backward_weight(g, x, w.shape, *args),
                      R.conv_transpose_backward_weight(_f64(g), _f64(x), w.shape, *args))


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c[0] for c in TRANSPOSE_CASES])
def test_conv_transpose_passes_match_reference(rng, case):
    check_transpose(rng, *case[1:])


@pytest.mark.parametrize("name", ["k3s2p1_outpad", "depthwise_stride2", "conv_transpose3d",
                                  "phases_outpad", "taps_pad_outpad_odd", "taps_3d",
                                  "taps_threads"])
def test_conv_transpose_every_isa_and_thread_count(isa, threads, rng, name):
    case = next(c for c in TRANSPOSE_CASES if c[0] == name)
    check_transpose(rng, *case[1:])


# --------------------------------------------------------------------------- #
# fused epilogue, algorithms, adjoint identities
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("name", ["3x3", "depthwise", "pointwise", "stride2", "conv3d",
                                  "gemm_small_deep", "gemm_rows", "gemm_1x1_s2_padded",
                                  "pix_oc12_ow33"])
def test_fused_bias_relu(isa, threads, rng, name):
    # with 2 threads the gemm cases take the rows split and the per-thread plain C block, whose
    # epilogue (bias, ReLU) is applied when the block is written to C
    _, x_shape, w_shape, *args = _case(name)
    x, w, b = _random(rng, x_shape), _random(rng, w_shape), _random(rng, (w_shape[0],))
    expected = np.maximum(R.conv_forward(_f64(x), _f64(w), _f64(b), *args), 0)
    assert_conv_close(K.conv_forward(x, w, b, *args, relu=True), expected)


@pytest.mark.parametrize("x_shape, w_shape", [((2, 3, 5, 4), (3, 4, 3, 3)),
                                              ((1, 3, 4, 12), (3, 16, 3, 3)),
                                              ((1, 3, 4, 14), (3, 16, 2, 2))])
def test_conv_transpose_fused_relu(rng, x_shape, w_shape):
    x, w, b = _random(rng, x_shape), _random(rng, w_shape), _random(rng, (w_shape[1],))
    args = (2, 1, 1, 1, 1)
    expected = np.maximum(R.conv_transpose_forward(_f64(x), _f64(w), _f64(b), *args), 0)
    assert_conv_close(K.conv_transpose_forward(x, w, b, *args, relu=True), expected)


TILES = _C.isa() == "avx512"  # the packing-free direct tiles exist in the AVX-512 build


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups, algorithms", [
    ((2, 8, 9, 9), (8, 1, 3, 3), 1, 1, 8,
     ("direct-depthwise", "direct-depthwise", "direct-depthwise")),
    ((2, 8, 9, 9), (8, 1, 3, 3), 2, 1, 8,
     ("direct-depthwise", "direct-depthwise-scatter", "direct-depthwise")),
    ((2, 1, 9, 9), (8, 1, 3, 3), 1, 1, 1,
     ("direct-depthwise", "direct-depthwise", "direct-depthwise")),
    ((2, 8, 9, 9), (16, 8, 3, 3), 1, 1, 1,
     ("conv-gemm", "conv-gemm-flipped", "taps-broadcast" if TILES else "conv-gemm")),
    ((2, 8, 9, 9), (16, 8, 3, 3), 2, 1, 1,
     ("conv-gemm", "gemm-col2im", "taps-broadcast" if TILES else "conv-gemm")),
    ((2, 8, 9, 9), (16, 8, 1, 1), 2, 0, 1, ("conv-gemm", "gemm-col2im", "conv-gemm")),
    ((2, 8, 9, 20), (16, 8, 3, 3), 1, 1, 1,
     ("direct-tiles", "direct-tiles-flipped", "taps-broadcast") if TILES else
     ("conv-gemm", "conv-gemm-flipped", "conv-gemm")),
    ((1, 16, 9, 26), (8, 16, 3, 3), 2, 1, 1,
     ("direct-tiles" if TILES else "conv-gemm",
      "phase-pairs-direct-tiles" if TILES else "gemm-col2im",
      "taps-broadcast" if TILES else "conv-gemm")),
    ((1, 16, 5, 9, 26), (8, 16, 3, 3, 3), 2, 1, 1,
     ("direct-tiles" if TILES else "conv-gemm",
      "phases-direct-tiles" if TILES else "gemm-col2im",
      "taps-broadcast" if TILES else "conv-gemm")),
])
def test_algorithm_choice(rng, x_shape, w_shape, stride, padding, groups, algorithms):
    """The path each pass takes (conv_last_algorithm reports the last one on this thread)."""
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    y = K.conv_forward(x, w, None, stride, padding, 1, groups)
    got = [_C.conv_last_algorithm()]
    K.conv_backward_input(y, w, x_shape, stride, padding, 1, groups)
    got.append(_C.conv_last_algorithm())
    K.conv_backward_weight(y, x, w_shape, stride, padding, 1, groups)
    got.append(_C.conv_last_algorithm())
    assert tuple(got) == algorithms


# The weight gradient with col(X) broadcast from a zero-padded input copy (taps-broadcast, AVX-512,
# kernels larger than 1x1, stride 1 or 2 along W): odd sizes, batch 1, groups, dilation, strides,
# 3-D, output channels not a multiple of 16 or above 64, rows of dW^T not a multiple of the
# micro-tile.
TAPS_CASES = [
    ((3, 5, 7, 11), (6, 5, 3, 3), 1, 1, 1, 1),
    ((1, 3, 13, 17), (70, 3, 5, 3), 1, (2, 0), (1, 2), 1),
    ((2, 9, 4, 30), (33, 3, 3, 3), 1, 0, 1, 3),
    ((1, 16, 9, 26), (130, 16, 3, 3), 1, 1, 2, 1),
    ((2, 4, 6, 7, 8), (5, 4, 3, 2, 3), (2, 1, 1), 1, (1, 2, 1), 1),
    ((2, 6, 5, 6, 7), (18, 3, 3, 3, 3), 1, 1, 1, 2),
    ((2, 3, 17, 19), (10, 3, 7, 7), 2, 3, 1, 1),
    ((1, 4, 9, 12), (6, 2, 3, 3), (3, 2), 1, (2, 1), 2),
    ((2, 5, 8, 9, 11), (7, 5, 2, 3, 3), 2, 1, 1, 1),
    ((1, 7, 1, 9), (9, 7, 1, 4), 1, (0, 2), 1, 1),
    ((4, 16, 12, 13), (24, 16, 3, 3), 1, 1, 1, 1),  # 2 threads: images split between them
    ((3, 8, 20, 20), (40, 8, 3, 3), 1, 1, 1, 1),  # 2 threads: rows of dW^T split
]


@pytest.mark.parametrize("case", TAPS_CASES)
def test_backward_weight_taps_broadcast(isa, threads, rng, case):
    x_shape, w_shape, *args = case
    x = _random(rng, x_shape)
    g = _random(rng, K.conv_geometry("t", x_shape, w_shape, *args)[3])
    dw = K.conv_backward_weight(g, x, w_shape, *args)
    if isa == "avx512":
        assert _C.conv_last_algorithm() == "taps-broadcast"
    assert_conv_close(dw, R.conv_backward_weight(_f64(g), _f64(x), w_shape, *args))


@pytest.mark.parametrize("limit", [64 << 10, 1 << 20])
def test_backward_weight_taps_broadcast_within_the_workspace_limit(rng, workspace_limit, threads,
                                                                    limit):
    """Under a small cap the pass falls back to the GEMM (the padded copy does not fit) or fits:
    right answers either way, never above the cap."""
    ce.set_workspace_limit(limit)
    _C.release_workspace()
    _C.reset_workspace_peak()
    for x_shape, w_shape, *args in TAPS_CASES + [((2, 32, 30, 30), (64, 32, 3, 3), 1, 1, 1, 1)]:
        x = _random(rng, x_shape)
        g = _random(rng, K.conv_geometry("t", x_shape, w_shape, *args)[3])
        assert_conv_close(K.conv_backward_weight(g, x, w_shape, *args),
                          R.conv_backward_weight(_f64(g), _f64(x), w_shape, *args))
    assert _C.workspace_peak_bytes() <= limit


@pytest.mark.parametrize("x_shape, w_shape, stride, output_padding, algorithm", [
    ((1, 8, 3, 14), (8, 16, 2, 2), 2, 0, "taps-direct-tiles" if TILES else "gemm-col2im"),
    ((1, 8, 3, 14), (8, 16, 2, 2), (2, 1), 0, "gemm-col2im"),  # kernel != stride along W
    ((1, 8, 3, 14), (8, 16, 1, 2), (1, 2), (0, 1), "taps-direct-tiles" if TILES else "gemm-col2im"),
    ((1, 8, 3, 14), (8, 8, 2, 2), 2, 0, "gemm-col2im"),  # under 16 output channels
    ((1, 8, 3, 13), (8, 16, 2, 2), 2, 0, "gemm-col2im"),  # input rows under 14 pixels
])
def test_transposed_forward_algorithm(rng, x_shape, w_shape, stride, output_padding, algorithm):
    """The transposed forward pass (a convolution's backward-input) of a kernel equal to its
    stride takes one 1x1 convolution per tap on the direct tiles where the shape allows."""
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    K.conv_transpose_forward(x, w, None, stride, 0, output_padding, 1, 1)
    assert _C.conv_last_algorithm() == algorithm


@pytest.mark.parametrize("name", ["3x3", "stride_2x3_rect", "groups3_stride", "depthwise_mult2",
                                  "pointwise_stride2", "conv3d_stride_aniso", "asymmetric_pad"])
def test_adjoint_identities(rng, name):
    """<conv(x, w), g> = <x, dX(g)> = <w, dW(g)>, with float32 kernels and float64 sums: the
    backward passes are the exact adjoints of the forward pass (a gradient check of the float32
    kernels themselves, with no finite differences)."""
    _, x_shape, w_shape, *args = _case(name)
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    y = K.conv_forward(x, w, None, *args)
    g = _random(rng, y.shape)
    dx = K.conv_backward_input(g, w, x.shape, *args)
    dw = K.conv_backward_weight(g, x, w.shape, *args)
    lhs = np.dot(_f64(y).ravel(), _f64(g).ravel())
    scale = np.sqrt(y.size) * np.abs(y).max() + 1.0
    assert abs(lhs - np.dot(_f64(x).ravel(), _f64(dx).ravel())) <= 1e-5 * scale
    assert abs(lhs - np.dot(_f64(w).ravel(), _f64(dw).ravel())) <= 1e-5 * scale


def test_output_arrays_are_filled_in_place(rng):
    x, w = _random(rng, (2, 3, 6, 6)), _random(rng, (4, 3, 3, 3))
    out = np.full((2, 4, 6, 6), np.nan, np.float32)
    y = K.conv_forward(x, w, None, 1, 1, out=out)
    assert y is out or np.shares_memory(y, out)
    assert_conv_close(out, R.conv_forward(_f64(x), _f64(w), None, 1, 1))
    g = _random(rng, out.shape)
    dx = np.full(x.shape, np.nan, np.float32)
    K.conv_backward_input(g, w, x.shape, 1, 1, out=dx)
    assert_conv_close(dx, R.conv_backward_input(_f64(g), _f64(w), x.shape, 1, 1))
    dw = np.full(w.shape, np.nan, np.float32)
    K.conv_backward_weight(g, x, w.shape, 1, 1, out=dw)
    assert_conv_close(dw, R.conv_backward_weight(_f64(g), _f64(x), w.shape, 1, 1))


def test_empty_batch(rng):
    x, w = np.zeros((0, 3, 5, 5), np.float32), _random(rng, (4, 3, 3, 3))
    assert K.conv_forward(x, w, None, 1, 1).shape == (0, 4, 5, 5)
    g = np.zeros((0, 4, 5, 5), np.float32)
    np.testing.assert_array_equal(K.conv_backward_weight(g, x, w.shape, 1, 1), 0)
    assert K.conv_backward_input(g, w, x.shape, 1, 1).shape == x.shape


# Inputs, weights and gradients flush against an inaccessible page (at the end, then at the
# start), so that a packer reading one float outside its image faults: the slice-run packers
# (stride 1, W == OW: 3x3, dilated, 5x5, 3-D), strided 1x1, stride-2 rows of 16+ pixels (the
# unmasked even-lane loads), flipped weights with and without permutes, several images a panel.
GUARD_CASES = [
    ("same_3x3", (3, 5, 3, 7), (6, 5, 3, 3), 1, 1, 1, 1),
    ("same_dil2", (2, 3, 5, 5), (4, 3, 3, 3), 1, 2, 2, 1),
    ("same_5x5_deep", (2, 24, 4, 3), (7, 24, 5, 5), 1, 2, 1, 1),
    ("same_3d", (1, 3, 3, 4, 5), (4, 3, 3, 3, 3), (2, 1, 1), 1, 1, 1),
    ("1x1_s2", (3, 7, 5, 9), (5, 7, 1, 1), 2, 0, 1, 1),
    ("s2_wide", (1, 3, 5, 37), (4, 3, 3, 3), 2, 1, 1, 1),
    ("flipped_deep", (3, 40, 3, 3), (45, 40, 3, 3), 1, 1, 1, 1),
    ("depthwise_w56", (1, 2, 5, 56), (2, 1, 3, 3), 1, 1, 1, 2),
    ("depthwise_w20_nopad", (2, 3, 4, 20), (3, 1, 3, 3), 1, 0, 1, 3),
    ("depthwise_w6", (1, 2, 9, 6), (2, 1, 3, 3), 1, 1, 1, 2),
]


@pytest.mark.parametrize("where", ["end", "start"])
@pytest.mark.parametrize("case", GUARD_CASES, ids=[c[0] for c in GUARD_CASES])
def test_conv_stays_inside_its_arrays(isa, threads, rng, case, where):
    from guard_pages import guarded
    _, x_shape, w_shape, *args = case
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    y = K.conv_forward(guarded(x, where), guarded(w, where), None, *args)
    assert_conv_close(y, R.conv_forward(_f64(x), _f64(w), None, *args))
    g = _random(rng, y.shape)
    assert_conv_close(K.conv_backward_input(guarded(g, where), guarded(w, where), x.shape, *args),
                      R.conv_backward_input(_f64(g), _f64(w), x.shape, *args))
    assert_conv_close(K.conv_backward_weight(guarded(g, where), guarded(x, where), w.shape, *args),
                      R.conv_backward_weight(_f64(g), _f64(x), w.shape, *args))


# OpenMP may start a smaller team than the plan's thread count (OMP_THREAD_LIMIT, OMP_DYNAMIC, a
# busy machine with OMP_DYNAMIC): each thread's share then grows, and must still fit the
# per-thread buffers the plan sized. Run in a subprocess: the limit is read when OpenMP starts.
_SMALL_TEAM_SCRIPT = """
import numpy as np, convengine as ce
from convengine.backends import reference as R
from convengine.kernels import conv as K
ce.set_num_threads(2)
rng = np.random.default_rng(0)
worst = 0.0
for xs, ws in [((5, 48, 5, 5), (20, 48, 3, 3)), ((4, 48, 3, 4), (50, 48, 3, 3))]:
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    g = rng.standard_normal((xs[0], ws[0]) + xs[2:]).astype(np.float32)
    pairs = [(K.conv_forward(x, w, None, 1, 1), R.conv_forward(x.astype(float), w.astype(float), None, 1, 1)),
             (K.conv_backward_input(g, w, xs, 1, 1), R.conv_backward_input(g.astype(float), w.astype(float), xs, 1, 1)),
             (K.conv_backward_weight(g, x, ws, 1, 1), R.conv_backward_weight(g.astype(float), x.astype(float), ws, 1, 1))]
    for y, e in pairs:
        worst = max(worst, float(np.max(np.abs(y - e)) / np.max(np.abs(e))))
print(worst)
"""


def test_conv_gemm_correct_when_openmp_starts_fewer_threads():
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    proc = subprocess.run([sys.executable, "-c", _SMALL_TEAM_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 1e-4


# --------------------------------------------------------------------------- #
# bounded workspace
# --------------------------------------------------------------------------- #

@pytest.fixture
def workspace_limit():
    """Restores the workspace limit (and frees this thread's buffer) after the test."""
    original = ce.get_workspace_limit()
    yield
    ce.set_workspace_limit(original)
    _C.release_workspace()


@pytest.mark.parametrize("limit", [0, 4096, 100_000])
def test_tiny_workspace_limit_still_correct(rng, workspace_limit, limit):
    """Tiles shrink to fit (down to 64 KiB, the floor every pass can work in), results do not
    change, and the workspace never holds more than the budget."""
    ce.set_workspace_limit(limit)
    _C.release_workspace()
    _C.reset_workspace_peak()
    # Strided (col2im path, the one that needs a column tile), flipped (weights copied), and
    # a weight big enough (64*64*9 floats = 147 KiB) that its flipped copy cannot fit.
    check_all_passes(rng, (2, 64, 9, 8), (64, 64, 3, 3), 2, 1, 1, 1)
    check_all_passes(rng, (2, 64, 7, 6), (64, 64, 3, 3), 1, 1, 1, 1)
    check_all_passes(rng, (3, 8, 9, 9), (16, 4, 3, 3), 1, 1, 1, 2)
    assert _C.workspace_peak_bytes() <= max(limit, 64 << 10)


@pytest.mark.parametrize("limit", [64 << 10, 1 << 20])
def test_every_case_within_the_workspace_limit(rng, workspace_limit, limit):
    """Every pass of every case under a small cap: right answers, and the workspace high-water
    mark (C++ allocations, which tracemalloc does not see) never above the cap."""
    ce.set_workspace_limit(limit)
    _C.release_workspace()
    _C.reset_workspace_peak()
    for case in CASES:
        check_all_passes(rng, *case[1:])
    for case in TRANSPOSE_CASES:
        check_transpose(rng, *case[1:])
    assert _C.workspace_peak_bytes() <= limit


def test_workspace_is_bounded_and_reused(rng, workspace_limit):
    """A backward-input pass whose column matrix for the batch would take 9*32*32*4*4 B/px *
    positions = 14 MiB runs in a 1 MiB workspace; the buffer is allocated once and reused."""
    ce.set_workspace_limit(1 << 20)
    _C.release_workspace()
    _C.reset_workspace_peak()
    x_shape, w_shape = (4, 32, 40, 40), (32, 32, 3, 3)
    w = _random(rng, w_shape)
    g = _random(rng, (4, 32, 20, 20))
    dx = K.conv_backward_input(g, w, x_shape, 2, 1)
    assert_conv_close(dx, R.conv_backward_input(_f64(g), _f64(w), x_shape, 2, 1))
    peak = _C.workspace_peak_bytes()
    assert 0 < peak <= 1 << 20
    held = _C.workspace_bytes_held()
    K.conv_backward_input(g, w, x_shape, 2, 1)
    assert _C.workspace_bytes_held() == held  # same buffer, no new allocation
    assert _C.workspace_peak_bytes() == peak


def test_workspace_limit_api():
    original = ce.get_workspace_limit()
    try:
        assert original == 64 << 20 or original > 0
        ce.set_workspace_limit(12345)
        assert ce.get_workspace_limit() == 12345
        with pytest.raises(ValueError, match="nbytes"):
            ce.set_workspace_limit(-1)
        with pytest.raises(TypeError, match="nbytes"):
            ce.set_workspace_limit(1.5)
    finally:
        ce.set_workspace_limit(original)


# --------------------------------------------------------------------------- #
# direct _C calls with bad arguments raise, never crash
# --------------------------------------------------------------------------- #

def _ok_args():
    x = np.zeros((2, 4, 6, 6), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    return x, w


@pytest.mark.parametrize("call, error, match", [
    (lambda x, w: _C.conv_forward(x[0, 0], w, None, [1, 1], [1, 1], [1, 1], 2), ValueError,
     "3-D, 4-D or 5-D"),
    (lambda x, w: _C.conv_forward(x[0], w, None, [1], [1], [1], 2), ValueError, "must be 3-D"),
    (lambda x, w: _C.conv_forward(x, w[:, :1].copy(), None, [1, 1], [1, 1], [1, 1], 2),
     ValueError, "channel mismatch"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [1, 1], [1, 1], 3), ValueError,
     "groups"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [1, 1], [1, 1], 0), ValueError,
     "groups"),
    (lambda x, w: _C.conv_forward(x, w, None, [1], [1, 1], [1, 1], 2), ValueError, "stride"),
    (lambda x, w: _C.conv_forward(x, w, None, [0, 1], [1, 1], [1, 1], 2), ValueError,
     "stride"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [-1, 1], [1, 1], 2), ValueError,
     "padding"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [1, 1], [0, 1], 2), ValueError,
     "dilation"),
    (lambda x, w: _C.conv_forward(x, np.zeros((6, 2, 9, 9), np.float32), None, [1, 1],
                                  [0, 0], [1, 1], 2), ValueError, "output size"),
    (lambda x, w: _C.conv_forward(x, np.zeros((6, 2, 0, 3), np.float32), None, [1, 1],
                                  [0, 0], [1, 1], 2), ValueError, "kernel size"),
    (lambda x, w: _C.conv_forward(x.astype(np.int32), w, None, [1, 1], [1, 1], [1, 1], 2),
     TypeError, "float32"),
    (lambda x, w: _C.conv_forward(x, w, np.zeros(5, np.float32), [1, 1], [1, 1], [1, 1], 2),
     ValueError, "bias"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [1, 1], [1, 1], 2,
                                  out=np.zeros((2, 6, 5, 6), np.float32)), ValueError, "out"),
    (lambda x, w: _C.conv_forward(x, w, None, [1, 1], [1, 1], [1, 1], 2, out=x), ValueError,
     "out"),
    (lambda x, w: _C.conv_forward(x[:, :, ::2], w, None, [1, 1], [1, 1], [1, 1], 2),
     ValueError, "contiguous"),
    (lambda x, w: _C.conv_backward_input(np.zeros((2, 6, 5, 6), np.float32), w, [2, 4, 6, 6],
                                         [1, 1], [1, 1], [1, 1], 2), ValueError, "grad_out"),
    (lambda x, w: _C.conv_backward_input(np.zeros((2, 6, 6, 6), np.float32), w, [2, -4, 6, 6],
                                         [1, 1], [1, 1], [1, 1], 2), ValueError, "input_shape"),
    (lambda x, w: _C.conv_backward_weight(np.zeros((2, 6, 6, 6), np.float32), x, [6, 4, 3, 3],
                                          [1, 1], [1, 1], [1, 1], 2), ValueError, "channel"),
    (lambda x, w: _C.conv_backward_weight(np.zeros((2, 6, 6), np.float32), x, [6, 2, 3, 3],
                                          [1, 1], [1, 1], [1, 1], 2), ValueError, "grad_out"),
    (lambda x, w: _C.conv_backward_bias(np.zeros(3, np.float32)), ValueError, "grad_out"),
    (lambda x, w: _C.conv_transpose_forward(x, w, None, [1, 1], [1, 1], [0, 0], [1, 1], 2),
     ValueError, "channel mismatch"),
    (lambda x, w: _C.conv_transpose_forward(x, np.zeros((4, 1, 3, 3), np.float32), None,
                                            [1, 1], [5, 5], [0, 0], [1, 1], 1), ValueError,
     "output size"),
    (lambda x, w: _C.conv_transpose_backward_input(np.zeros((2, 3, 5, 6), np.float32),
                                                   np.zeros((4, 3, 3, 3), np.float32),
                                                   [2, 4, 6, 6], [1, 1], [1, 1], [0, 0],
                                                   [1, 1], 1), ValueError, "grad_out"),
    (lambda x, w: _C.conv_transpose_backward_weight(np.zeros((2, 3, 6, 6), np.float32), x,
                                                    [4, 2, 3, 3], [1, 1], [1, 1], [0, 0],
                                                    [1, 1], 1), ValueError, "grad_out"),
    (lambda x, w: _C.conv_forward([[1.0]], w, None, [1, 1], [1, 1], [1, 1], 2), TypeError,
     "ndarray"),
])
def test_direct_calls_with_bad_arguments_raise(call, error, match):
    x, w = _ok_args()
    with pytest.raises(error, match=match):
        call(x, w)


@pytest.mark.parametrize("call, error, match", [
    (lambda: K.conv_forward(np.zeros((2, 3, 5), np.int64), np.zeros((1, 3, 3), np.float32)),
     TypeError, "x must have dtype float32"),
    (lambda: K.conv_forward(np.zeros((2, 3, 5, 5), np.float32),
                            np.zeros((4, 2, 3, 3), np.float32)), ValueError, "channel mismatch"),
    (lambda: K.conv_forward(np.zeros((2, 3, 5, 5), np.float32),
                            np.zeros((4, 3, 3, 3), np.float32), padding=-1), ValueError,
     "padding must be non-negative"),
    (lambda: K.conv_forward(np.zeros((2, 3, 5, 5), np.float32),
                            np.zeros((4, 3, 3, 3), np.float32), padding="full"), ValueError,
     "'valid' or 'same'"),
    (lambda: K.conv_transpose_forward(np.zeros((2, 3, 5, 5), np.float32),
                                      np.zeros((3, 3, 3, 3), np.float32), stride=2,
                                      output_padding=2), ValueError, "output_padding"),
    (lambda: K.conv_backward_input(np.zeros((2, 4, 5, 5), np.float32),
                                   np.zeros((4, 3, 3, 3), np.float32), (2, 3, 5, 5)),
     ValueError, r"grad_out must have shape \(2, 4, 3, 3\)"),
])
def test_kernel_wrappers_check_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_same_padding_splits_as_tensorflow():
    # in 7, k 3, s 2: out 4, total (4-1)*2 + 3 - 7 = 2 -> (1, 1); in 8: total 1 -> (0, 1)
    assert K.same_padding((7, 8), (3, 3), (2, 2), (1, 1)) == ((1, 1), (0, 1))
    # stride 1: total d*(k-1), odd element after (as PyTorch)
    assert K.same_padding((5,), (4,), (1,), (1,)) == ((1, 2),)
    assert K.same_padding((5,), (3,), (1,), (2,)) == ((2, 2),)
    # no negative padding when the stride skips past the kernel
    assert K.same_padding((9,), (1,), (3,), (1,)) == ((0, 0),)
