"""Pooling kernels of convengine._C under every kernel variant and thread count, against the
NumPy reference (max, average) and brute-force oracles here (adaptive, unpool); and the boundary
checks that keep inconsistent arrays away from the kernels."""

import numpy as np
import pytest

from convengine import _C
from convengine.backends import reference as R
from conftest import assert_close

# Shapes are small but wide enough (W up to 80) for the 16-lane vector paths: several full
# vectors per row, border columns on both sides, and a scalar tail.

# (shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 37), 3, 2, 1, 1, False),
    ((1, 1, 50), 2, 2, 0, 1, True),
    ((2, 2, 41), 3, 1, 1, 2, True),
    ((1, 2, 9), 4, 3, 2, 1, True),
    ((2, 3, 13, 45), 2, 2, 0, 1, False),
    ((1, 2, 17, 67), 3, 2, 1, 1, True),
    ((2, 1, 11, 40), (3, 2), (1, 2), (1, 1), 1, False),
    ((1, 3, 12, 70), 3, 1, 1, 1, False),
    ((1, 2, 15, 80), 3, 3, 1, 1, True),
    ((2, 2, 16, 60), 3, 2, 1, 2, False),
    ((1, 1, 5, 5), 5, 1, 2, 1, False),
    ((1, 2, 7, 9), (2, 3), (3, 2), (1, 0), (2, 1), True),
    ((1, 2, 5, 9, 37), 2, 2, 0, 1, False),
    ((2, 1, 6, 7, 40), 3, (1, 2, 2), 1, 1, True),
    ((1, 1, 4, 5, 6), (1, 3, 3), (1, 2, 1), (0, 1, 1), (1, 1, 2), False),
]

# (shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    ((2, 3, 37), 3, 2, 1, False, True, None),
    ((1, 2, 29), 4, 3, 2, True, False, None),
    ((2, 3, 13, 45), 2, 2, 0, False, True, None),
    ((1, 2, 17, 67), 3, 2, 1, True, False, None),
    ((1, 2, 17, 67), 3, 2, 1, True, True, None),
    ((1, 3, 12, 70), 3, 1, 1, False, True, 7),
    ((1, 2, 15, 80), 3, 3, 1, True, False, None),
    ((1, 1, 5, 5), 5, 1, 2, False, False, -3),
    ((1, 2, 7, 9), (2, 3), (3, 2), (1, 0), True, True, None),
    ((1, 2, 5, 9, 37), 2, 2, 0, False, True, None),
    ((2, 1, 6, 7, 40), 3, (1, 2, 2), 1, True, False, 5),
    # disjoint windows (stride == kernel: the single-pass backward): ragged ends, ceil mode,
    # padding, a divisor override, 1-d and 3-d
    ((2, 3, 11, 45), 2, 2, 0, True, True, None),
    ((2, 2, 9, 33), 2, 2, 1, True, False, 3),
    ((1, 2, 31), 2, 2, 0, False, True, None),
    ((1, 2, 10, 12, 14), (2, 3, 2), (2, 3, 2), (1, 1, 0), False, False, None),
]

# (input shape, output size)
ADAPTIVE_CASES = [
    ((2, 3, 10), (4,)),
    ((1, 2, 7), (7,)),
    ((1, 1, 5), (8,)),
    ((2, 3, 10, 13), (3, 5)),
    ((1, 2, 7, 7), (1, 1)),
    ((1, 2, 9, 31), (4, 6)),
    ((1, 1, 3, 4), (5, 7)),
    ((2, 2, 8, 40), (4, 20)),
    ((1, 2, 5, 6, 7), (2, 3, 4)),
    ((1, 1, 4, 4, 4), (2, 2, 2)),
    ((1, 1, 3, 5, 2), (4, 2, 3)),
]


def as_tuple(v, nd):
    return tuple(v) if isinstance(v, tuple) else (v,) * nd


def random_input(rng, shape, special=False):
    x = rng.standard_normal(shape).astype(np.float32)
    if special:  # NaN, +-inf and repeated values (ties) sprinkled in
        flat = x.reshape(-1)
        n = flat.size
        flat[rng.choice(n, max(1, n // 50), replace=False)] = np.nan
        flat[rng.choice(n, max(1, n // 50), replace=False)] = -np.inf
        flat[rng.choice(n, max(1, n // 80), replace=False)] = np.inf
        flat[rng.choice(n, max(1, n // 10), replace=False)] = 0.5
    return x


def max_args(case):
    shape, kernel, stride, pad, dil, ceil = case
    nd = len(shape) - 2
    return (as_tuple(kernel, nd), as_tuple(stride, nd), as_tuple(pad, nd), as_tuple(dil, nd),
            ceil)


# ----- max pooling -----------------------------------------------------------------------------

@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf_ties"])
def test_max_pool_matches_reference(isa, threads, rng, special):
    for case in MAX_CASES:
        x = random_input(rng, case[0], special)
        kernel, stride, pad, dil, ceil = max_args(case)
        expected, expected_idx = R.max_pool_forward(x, kernel, stride, pad, dil, ceil)
        out, idx = _C.max_pool_forward(x, kernel, stride, pad, dil, ceil, True)
        np.testing.assert_array_equal(out, expected, err_msg=str(case))
        np.testing.assert_array_equal(idx, expected_idx, err_msg=str(case))
        # without indices: the same values (another code path in the kernels)
        np.testing.assert_array_equal(_C.max_pool_forward(x, kernel, stride, pad, dil, ceil),
                                      expected, err_msg=str(case))
        grad = rng.standard_normal(out.shape).astype(np.float32)
        gx = _C.max_pool_backward(grad, idx, x.shape)
        assert_close(gx, R.max_pool_backward(grad, idx, x.shape), "exact_ops")


def test_max_pool_empty_window_gives_minus_inf_and_index_minus_one():
    # kernel 2, dilation 3, padding 1 over 2 elements: window 0 reads positions -1 and 2
    x = np.array([[[1.0, 2.0]]], dtype=np.float32)
    out, idx = _C.max_pool_forward(x, [2], [1], [1], [3], False, True)
    expected, expected_idx = R.max_pool_forward(x, 2, 1, 1, 3)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(idx, expected_idx)
    assert out[0, 0, 0] == -np.inf and idx[0, 0, 0] == -1
    # backward skips index -1
    np.testing.assert_array_equal(_C.max_pool_backward(np.ones_like(out), idx, x.shape), 0)


def test_max_pool_preallocated_outputs_and_empty_batch(rng):
    x = rng.standard_normal((2, 3, 9, 20)).astype(np.float32)
    out = np.full((2, 3, 4, 10), 7.0, dtype=np.float32)
    idx = np.full((2, 3, 4, 10), 7, dtype=np.int64)
    result = _C.max_pool_forward(x, [2, 2], [2, 2], [0, 0], [1, 1], False, True, out, idx)
    assert result[0] is out and result[1] is idx
    expected, expected_idx = R.max_pool_forward(x, 2, 2)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(idx, expected_idx)
    empty = np.zeros((0, 3, 9, 20), dtype=np.float32)
    assert _C.max_pool_forward(empty, [2, 2], [2, 2], [0, 0], [1, 1]).shape == (0, 3, 4, 10)


@pytest.mark.parametrize("shape", [(3, 37, 7, 7), (2, 20, 4, 4), (1, 33, 1, 1), (1, 17, 17, 17),
                                   (2, 16, 5)])
def test_global_avg_pool_many_planes(isa, threads, rng, shape):
    # global pooling sums 16 small planes at a time on AVX-512: full blocks and a remainder
    x = rng.standard_normal(shape).astype(np.float32)
    out = _C.adaptive_avg_pool_forward(x, [1] * (len(shape) - 2))
    expected = x.astype(np.float64).mean(axis=tuple(range(2, len(shape))), keepdims=True)
    assert_close(out, expected.astype(np.float32), "pool")


# ----- average pooling -------------------------------------------------------------------------

def test_avg_pool_matches_reference(isa, threads, rng):
    for case in AVG_CASES:
        shape, kernel, stride, pad, ceil, cip, div = case
        nd = len(shape) - 2
        kernel, stride, pad = as_tuple(kernel, nd), as_tuple(stride, nd), as_tuple(pad, nd)
        x = random_input(rng, shape)
        out = _C.avg_pool_forward(x, kernel, stride, pad, ceil, cip, div)
        assert_close(out, R.avg_pool_forward(x, kernel, stride, pad, ceil, cip, div), "pool")
        grad = rng.standard_normal(out.shape).astype(np.float32)
        gx = _C.avg_pool_backward(grad, x.shape, kernel, stride, pad, ceil, cip, div)
        assert_close(gx, R.avg_pool_backward(grad, x.shape, kernel, stride, pad, ceil, cip, div),
                     "pool")


def test_avg_pool_propagates_nan_and_inf():
    x = np.zeros((1, 1, 1, 40), dtype=np.float32)
    x[0, 0, 0, 5] = np.nan
    x[0, 0, 0, 20] = np.inf
    out = _C.avg_pool_forward(x, [1, 2], [1, 2], [0, 0])
    expected = R.avg_pool_forward(x, (1, 2), (1, 2))
    np.testing.assert_array_equal(out, expected)


# ----- adaptive pooling ------------------------------------------------------------------------

def adaptive_oracle(x, output_size):
    """(avg, max, max_indices) by brute force over the bins, float64 sums."""
    spatial = x.shape[2:]
    bins = [[(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]
            for n, o in zip(spatial, output_size)]
    flat_index = np.arange(int(np.prod(spatial))).reshape(spatial)
    shape = x.shape[:2] + tuple(output_size)
    avg, mx, idx = np.empty(shape), np.empty(shape, np.float32), np.empty(shape, np.int64)
    for n, c in np.ndindex(*x.shape[:2]):
        for pos in np.ndindex(*output_size):
            window = tuple(slice(*bins[d][p]) for d, p in enumerate(pos))
            values = x[(n, c) + window].reshape(-1)
            where = flat_index[window].reshape(-1)
            with np.errstate(invalid="ignore"):  # inf - inf in a bin gives NaN, as it should
                avg[(n, c) + pos] = values.astype(np.float64).mean()
            best, best_i = -np.inf, where[0]
            for v, i in zip(values, where):  # PyTorch's rule: > or NaN
                if v > best or np.isnan(v):
                    best, best_i = v, i
            mx[(n, c) + pos], idx[(n, c) + pos] = best, best_i
    return avg, mx, idx


@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf_ties"])
def test_adaptive_pools_match_oracle(isa, threads, rng, special):
    for shape, size in ADAPTIVE_CASES:
        x = random_input(rng, shape, special)
        avg, mx, mx_idx = adaptive_oracle(x, size)
        out = _C.adaptive_avg_pool_forward(x, size)
        assert_close(out, avg.astype(np.float32), "pool")
        got, got_idx = _C.adaptive_max_pool_forward(x, size, True)
        np.testing.assert_array_equal(got, mx, err_msg=str((shape, size)))
        np.testing.assert_array_equal(got_idx, mx_idx, err_msg=str((shape, size)))
        np.testing.assert_array_equal(_C.adaptive_max_pool_forward(x, size), mx)
        if special:
            continue
        # backward is the adjoint of forward: <grad, A x> == <A^T grad, x>
        grad = rng.standard_normal(out.shape).astype(np.float32)
        gx = _C.adaptive_avg_pool_backward(grad, x.shape)
        assert_close(np.vdot(grad.astype(np.float64), avg), np.vdot(gx.astype(np.float64), x),
                     "reduction", np.float32)
        gmax = _C.max_pool_backward(grad, got_idx, x.shape)
        assert_close(gmax, R.max_pool_backward(grad, got_idx, x.shape), "exact_ops")


def test_global_average_is_the_plane_mean(isa, threads, rng):
    x = rng.standard_normal((2, 5, 7, 7)).astype(np.float32)
    out = _C.adaptive_avg_pool_forward(x, [1, 1])
    assert_close(out, x.astype(np.float64).mean(axis=(2, 3), keepdims=True), "pool", np.float32)
    gx = _C.adaptive_avg_pool_backward(np.ones_like(out), x.shape)
    assert_close(gx, np.full(x.shape, 1 / 49), "exact_ops", np.float32)


# ----- max unpooling ---------------------------------------------------------------------------

def test_max_unpool_round_trip(isa, threads, rng):
    for case in MAX_CASES[:8] + MAX_CASES[12:14]:
        x = random_input(rng, case[0])
        kernel, stride, pad, dil, ceil = max_args(case)
        pooled, idx = _C.max_pool_forward(x, kernel, stride, pad, dil, ceil, True)
        planes = x.shape[0] * x.shape[1]
        for size in (x.shape[2:], tuple(s + 1 for s in x.shape[2:])):
            out = _C.max_unpool_forward(pooled, idx, list(size))
            full = int(np.prod(size))
            expected = np.zeros((planes, full), dtype=np.float32)
            # the index is into the input plane; with a larger output it is reinterpreted there
            rows = np.arange(planes)[:, None]
            expected[rows, idx.reshape(planes, -1)] = pooled.reshape(planes, -1)
            np.testing.assert_array_equal(out, expected.reshape(x.shape[:2] + tuple(size)))
            grad = rng.standard_normal(out.shape).astype(np.float32)
            expected_grad = np.take_along_axis(grad.reshape(planes, -1), idx.reshape(planes, -1), 1)
            np.testing.assert_array_equal(_C.max_unpool_backward(grad, idx),
                                          expected_grad.reshape(idx.shape))


# ----- variants agree, thread counts agree -----------------------------------------------------

def test_variants_and_thread_counts_agree(rng):
    import convengine as ce

    x = rng.standard_normal((2, 4, 33, 71)).astype(np.float32)
    original_isa, original_threads = _C.isa(), ce.get_num_threads()
    results = []
    try:
        for isa in [i for i in _C.compiled_isas() if _C.cpu_supports(i)]:
            _C._select_isa(isa)
            for n in (1, 2, 3):
                ce.set_num_threads(n)
                results.append((_C.max_pool_forward(x, [3, 3], [2, 2], [1, 1], [1, 1], True, True),
                                _C.avg_pool_forward(x, [3, 3], [2, 2], [1, 1], True, False)))
    finally:
        _C._select_isa(original_isa)
        ce.set_num_threads(original_threads)
    (m0, i0), a0 = results[0]
    for (m, i), a in results[1:]:
        np.testing.assert_array_equal(m, m0)
        np.testing.assert_array_equal(i, i0)
        assert_close(a, a0, "exact_ops")


# ----- the boundary: inconsistent arguments raise, never crash ---------------------------------

X4 = np.zeros((1, 2, 6, 6), dtype=np.float32)
I4 = np.zeros((1, 2, 3, 3), dtype=np.int64)
G4 = np.zeros((1, 2, 3, 3), dtype=np.float32)

BAD_CALLS = [
    (TypeError, lambda: _C.max_pool_forward(X4.astype(np.float64), [2, 2], [2, 2], [0, 0], [1, 1])),
    (TypeError, lambda: _C.max_pool_forward(X4.astype(np.int32), [2, 2], [2, 2], [0, 0], [1, 1])),
    (TypeError, lambda: _C.max_pool_forward([1.0], [2], [2], [0], [1])),
    (ValueError, lambda: _C.max_pool_forward(X4[0, 0], [2], [2], [0], [1])),
    (ValueError, lambda: _C.max_pool_forward(X4[..., ::2], [2, 2], [2, 2], [0, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2], [2, 2], [0, 0], [1, 1])),
    (TypeError, lambda: _C.max_pool_forward(X4, [2.0, 2], [2, 2], [0, 0], [1, 1])),
    (TypeError, lambda: _C.max_pool_forward(X4, 2, [2, 2], [0, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [0, 2], [2, 2], [0, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2, 2], [0, 2], [0, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2, 2], [2, 2], [2, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2, 2], [2, 2], [-1, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2, 2], [2, 2], [0, 0], [0, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [7, 2], [2, 2], [0, 0], [1, 1])),
    (ValueError, lambda: _C.max_pool_forward(X4, [2, 2], [2, 2], [0, 0], [1, 1], False, False,
                                             np.zeros((1, 2, 3, 4), np.float32))),
    (TypeError, lambda: _C.max_pool_forward(X4, [2, 2], [2, 2], [0, 0], [1, 1], False, True,
                                            None, np.zeros((1, 2, 3, 3), np.int32))),
    (ValueError, lambda: _C.max_pool_backward(G4, I4[..., :2], X4.shape)),
    (TypeError, lambda: _C.max_pool_backward(G4, I4.astype(np.float32), X4.shape)),
    (ValueError, lambda: _C.max_pool_backward(G4, I4 + 36, X4.shape)),
    (ValueError, lambda: _C.max_pool_backward(G4, I4 - 5, X4.shape)),
    (ValueError, lambda: _C.max_pool_backward(G4, I4, (2, 2, 6, 6))),
    (ValueError, lambda: _C.max_pool_backward(G4, I4, (1, 2, 6))),
    (ValueError, lambda: _C.max_pool_backward(G4, I4, (1, 2, -6, 6))),
    (TypeError, lambda: _C.max_pool_backward(G4, I4, "abc")),
    (ValueError, lambda: _C.avg_pool_forward(X4, [2, 2], [2, 2], [0, 0], False, True, 0)),
    (TypeError, lambda: _C.avg_pool_forward(X4, [2, 2], [2, 2], [0, 0], False, True, 1.5)),
    (ValueError, lambda: _C.avg_pool_backward(G4[..., :2], X4.shape, [2, 2], [2, 2], [0, 0])),
    (ValueError, lambda: _C.avg_pool_backward(G4, (1, 2, 6, 6), [2, 2], [2, 2], [0, 0], False,
                                              True, None, np.zeros((1, 2, 6), np.float32))),
    (ValueError, lambda: _C.adaptive_avg_pool_forward(X4, [0, 2])),
    (ValueError, lambda: _C.adaptive_avg_pool_forward(X4, [2])),
    (ValueError, lambda: _C.adaptive_max_pool_forward(X4, [-1, 2], True)),
    (ValueError, lambda: _C.adaptive_avg_pool_backward(G4, (3, 2, 6, 6))),
    (ValueError, lambda: _C.adaptive_avg_pool_backward(G4, (1, 2, 0, 6))),
    (ValueError, lambda: _C.max_unpool_forward(G4, I4 + 36, [6, 6])),
    (ValueError, lambda: _C.max_unpool_forward(G4, I4 - 1, [6, 6])),
    (ValueError, lambda: _C.max_unpool_forward(G4, I4[:, :1], [6, 6])),
    (ValueError, lambda: _C.max_unpool_forward(G4, I4, [0, 6])),
    (ValueError, lambda: _C.max_unpool_backward(np.zeros((2, 2, 6, 6), np.float32), I4)),
    (ValueError, lambda: _C.max_unpool_backward(X4, I4 + 36)),
]


@pytest.mark.parametrize("error, call", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_inconsistent_arguments_raise(error, call):
    with pytest.raises(error):
        call()


def test_error_messages_name_the_argument():
    with pytest.raises(ValueError, match="padding"):
        _C.max_pool_forward(X4, [2, 2], [2, 2], [2, 0], [1, 1])
    with pytest.raises(TypeError, match="'indices'"):
        _C.max_pool_backward(G4, I4.astype(np.int32), X4.shape)
    with pytest.raises(ValueError, match="'out'"):
        _C.avg_pool_forward(X4, [2, 2], [2, 2], [0, 0], False, True, None,
                            np.zeros((1, 2, 3, 4), np.float32))


# ----- arrays flush against an inaccessible page -----------------------------------------------

# (shape, kernel, stride, padding, ceil_mode): rows of 2x2/2 windows loaded in pairs (W >= 32,
# odd and even), disjoint windows with ragged ends, ceil mode and padding, overlapping windows.
GUARD_CASES = [
    ((1, 2, 5, 33), 2, 2, 0, False),
    ((2, 1, 4, 64), 2, 2, 0, False),
    ((1, 2, 7, 35), 2, 2, 0, True),
    ((1, 1, 9, 37), 3, 3, 1, True),
    ((1, 2, 5, 40), 3, 2, 1, True),
    ((1, 2, 3, 5, 34), 2, 2, 0, False),
]


@pytest.mark.parametrize("where", ["end", "start"])
def test_pool_kernels_stay_inside_their_arrays(isa, threads, rng, where):
    from guard_pages import guarded
    for shape, kernel, stride, pad, ceil in GUARD_CASES:
        nd = len(shape) - 2
        k, s, p = as_tuple(kernel, nd), as_tuple(stride, nd), as_tuple(pad, nd)
        x = random_input(rng, shape)
        gx_x = guarded(x, where)
        out = _C.avg_pool_forward(gx_x, k, s, p, ceil, True, None)
        assert_close(out, R.avg_pool_forward(x, k, s, p, ceil, True, None), "pool")
        grad = rng.standard_normal(out.shape).astype(np.float32)
        dx = guarded(np.full(shape, np.nan, np.float32), where)  # every element must be written
        _C.avg_pool_backward(guarded(grad, where), shape, k, s, p, ceil, True, None, dx)
        assert_close(dx, R.avg_pool_backward(grad, shape, k, s, p, ceil, True, None), "pool")
        m, idx = _C.max_pool_forward(gx_x, k, s, p, (1,) * nd, ceil, True)
        expected, expected_idx = R.max_pool_forward(x, k, s, p, (1,) * nd, ceil)
        np.testing.assert_array_equal(m, expected)
        np.testing.assert_array_equal(idx, expected_idx)
    for shape in [(1, 17, 7, 7), (2, 16, 3, 5), (1, 33, 17, 17)]:  # global: 16 planes at a time
        x = random_input(rng, shape)
        out = _C.adaptive_avg_pool_forward(guarded(x, where), [1, 1])
        assert_close(out, x.astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32),
                     "pool")
