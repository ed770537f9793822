"""Element-wise and reduction kernels of convengine._C, under every kernel variant and thread
count, against NumPy; and the boundary checks that keep bad arrays away from the kernels."""

import numpy as np
import pytest

from convengine import _C
from conftest import assert_close

# Lengths around vector widths (4, 8, 16 floats), the 8192-element chunk and the threading
# threshold, plus empty and single-element arrays.
SIZES = [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 8191, 8192, 8193, 70001]

BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def random_f32(rng, n, low=-3.0, high=3.0):
    return rng.uniform(low, high, n).astype(np.float32)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("n", SIZES)
def test_binary_matches_numpy(isa, threads, rng, name, n):
    a, b = random_f32(rng, n), random_f32(rng, n, 0.5, 2.0)
    np.testing.assert_array_equal(getattr(_C, name)(a, b), BINARY[name](a, b))


@pytest.mark.parametrize("n", SIZES)
def test_unary_kernels_match_numpy(isa, threads, rng, n):
    x = random_f32(rng, n, -20, 20)
    np.testing.assert_array_equal(_C.relu(x), np.maximum(x, 0))
    grad = random_f32(rng, n)
    np.testing.assert_array_equal(_C.relu_backward(grad, x), np.where(x > 0, grad, 0))
    assert_close(_C.exp(x), np.exp(x.astype(np.float64)), "exact_ops", np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_axpy_in_place(isa, threads, rng, n):
    x, y = random_f32(rng, n), random_f32(rng, n)
    expected = y + np.float32(0.5) * x
    _C.axpy(0.5, x, y)
    assert_close(y, expected, "exact_ops")


@pytest.mark.parametrize("n", [1, 7, 16, 8193, 70001, 1_000_003])
def test_reductions_match_float64(isa, threads, rng, n):
    x = random_f32(rng, n)
    x64 = x.astype(np.float64)
    assert_close(_C.sum(x), x64.sum(), "reduction", np.float32)
    assert_close(_C.sum_squared_deviation(x, x64.mean()), ((x64 - x64.mean()) ** 2).sum(),
                 "reduction", np.float32)
    assert _C.max(x) == x.max()
    assert _C.min(x) == x.min()


def test_reductions_do_not_depend_on_thread_count(isa, rng):
    import convengine as ce

    x = random_f32(rng, 300_001)
    original = ce.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            ce.set_num_threads(n)
            results.append((_C.sum(x), _C.sum_squared_deviation(x, 0.1)))
    finally:
        ce.set_num_threads(original)
    assert results[0] == results[1] == results[2]


def test_exp_special_values(isa):
    x = np.array([0, -0.0, 1, -1, 88.7, 88.73, 1000, -87.5, -100, -103.9, -104, -1000,
                  np.inf, -np.inf, np.nan], dtype=np.float32)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(np.float32)
    got = _C.exp(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    # Subnormal results are exact to within one subnormal step.
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6, atol=2e-45)


def test_exp_accuracy_over_whole_range(isa):
    x = np.linspace(-103, 88.7, 400_001, dtype=np.float32)
    expected = np.exp(x.astype(np.float64))
    ulps = np.abs(_C.exp(x) - expected) / np.spacing(expected.astype(np.float32))
    assert ulps.max() <= 2.0


@pytest.mark.parametrize("n", [1, 16, 8193, 70001])
def test_max_min_propagate_nan_and_inf(isa, threads, rng, n):
    x = random_f32(rng, n)
    x[n // 2] = np.inf
    assert _C.max(x) == np.inf
    x[n // 3] = -np.inf
    assert _C.min(x) == -np.inf
    x[n - 1] = np.nan
    assert np.isnan(_C.max(x)) and np.isnan(_C.min(x))
    np.testing.assert_array_equal(np.isnan(_C.relu(x)), np.isnan(x))


def test_kernels_write_into_out_and_in_place(rng):
    a, b = random_f32(rng, 100), random_f32(rng, 100)
    out = np.empty_like(a)
    assert _C.add(a, b, out=out) is not None
    np.testing.assert_array_equal(out, a + b)
    expected = a * b
    _C.mul(a, b, out=a)  # exactly aliasing an input is allowed
    np.testing.assert_array_equal(a, expected)


def test_kernels_work_on_multidimensional_arrays(rng):
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    out = _C.exp(a)
    assert out.shape == (3, 4, 5)
    assert_close(out, np.exp(a.astype(np.float64)), "exact_ops", np.float32)


# ----- bad input: clear errors, never a crash ------------------------------------------------

def test_wrong_dtype_is_type_error():
    with pytest.raises(TypeError, match=r"add: argument 'a' must have dtype float32, got float64"):
        _C.add(np.ones(3), np.ones(3, np.float32))
    with pytest.raises(TypeError, match="float32"):
        _C.sum(np.ones(3, np.int32))


def test_non_array_is_type_error():
    with pytest.raises(TypeError, match=r"exp: argument 'x' must be a numpy.ndarray, got list"):
        _C.exp([1.0, 2.0])
    with pytest.raises(TypeError):
        _C.max(None)


@pytest.mark.parametrize("view", [
    lambda a: a[::2],
    lambda a: a[::-1],
    lambda a: a.reshape(4, 5).T,
])
def test_non_contiguous_or_negative_stride_is_value_error(view):
    a = np.arange(20, dtype=np.float32)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.relu(view(a))


def test_misaligned_is_value_error():
    raw = np.zeros(41, dtype=np.uint8)
    misaligned = raw[1:].view(np.float32)
    assert not misaligned.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        _C.exp(misaligned)


def test_shape_mismatch_is_value_error():
    with pytest.raises(ValueError, match=r"mul: 'a' and 'b' must have the same shape, got \(3,\) and \(4,\)"):
        _C.mul(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="same shape"):
        _C.add(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32))


def test_bad_out_is_rejected_and_inputs_untouched():
    a = np.arange(10, dtype=np.float32)
    before = a.copy()
    with pytest.raises(ValueError, match="same shape"):
        _C.add(a, a, out=np.empty(9, np.float32))
    with pytest.raises(TypeError, match="'out' must have dtype float32"):
        _C.add(a, a, out=np.empty(10))
    readonly = np.empty(10, np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _C.exp(a, out=readonly)
    with pytest.raises(ValueError, match="partially overlaps"):
        big = np.arange(11, dtype=np.float32)
        _C.exp(big[:10], out=big[1:])
    np.testing.assert_array_equal(a, before)


def test_empty_reductions():
    assert _C.sum(np.empty(0, np.float32)) == 0.0
    with pytest.raises(ValueError, match="max: the input is empty"):
        _C.max(np.empty(0, np.float32))
    with pytest.raises(ValueError, match="min: the input is empty"):
        _C.min(np.empty((3, 0), np.float32))


def test_axpy_rejects_readonly_target():
    y = np.ones(4, np.float32)
    y.flags.writeable = False
    with pytest.raises(ValueError, match="'y' must be writeable"):
        _C.axpy(1.0, np.ones(4, np.float32), y)
