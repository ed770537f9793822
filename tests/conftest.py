"""Shared test fixtures and the one table of tolerances."""

import numpy as np
import pytest

import convengine as ce
from convengine import _C

# Tolerances, one table for the whole suite: (rtol, atol) by dtype and kind of comparison.
#   exact_ops: the same arithmetic in another order (element-wise kernels vs NumPy).
#   reduction: float32 sums of many terms, compared with a float64 reference.
#   vs_torch:  our result against PyTorch's, same dtype.
#   conv_vs_torch: float32 convolutions (sums over whole windows) against PyTorch.
#   conv_vs_reference: float32 convolution kernels against the float64 NumPy reference; atol
#                      is scaled by the largest |expected| (tests/engine/test_conv.py).
#   gradcheck: float64 analytic vs central-difference gradients.
TOLERANCES = {
    ("float32", "exact_ops"): (1e-6, 1e-7),
    ("float32", "reduction"): (1e-5, 1e-5),
    ("float32", "vs_torch"): (1e-5, 1e-6),
    ("float32", "conv_vs_torch"): (1e-5, 1e-5),
    ("float32", "conv_vs_reference"): (1e-4, 1e-5),  # atol x the largest |expected|
    ("float64", "vs_torch"): (1e-10, 1e-12),
    ("float64", "gradcheck"): (1e-3, 1e-5),
    # pool: float32 window sums (average pooling) in another order than the reference's.
    ("float32", "pool"): (1e-5, 1e-6),
    # activation_grad: float32 activation gradients against float64; absolute where a
    # gradient crosses zero (GELU near x = -0.75 is a difference of two 0.2-sized terms).
    ("float32", "activation_grad"): (2e-6, 5e-7),
    # vs_torch_activation: against PyTorch's own float32 activations, which lose up to 2e-6
    # absolute where tanh-GELU's 1 + tanh(u) and 1 - tanh(u)^2 cancel (x near -5).
    ("float32", "vs_torch_activation"): (1e-5, 3e-6),
    # resample: float32 augmentation kernels (resampling, blur) against scipy in float64.
    ("float32", "resample"): (1e-5, 1e-5),
    # schedule: learning rates against torch's (the same double-precision recurrences).
    ("float64", "schedule"): (1e-12, 0.0),
    # model_vs_torch: whole float32 models (tens of convolutions, batch norm) against a torch
    # twin with the same weights: outputs, input and parameter gradients, running statistics.
    ("float32", "model_vs_torch"): (1e-4, 1e-4),
    # cam_vs_torch: Grad-CAM maps in [0, 1] (float32 activations and gradients, min-max
    # normalised) against the same maps computed with torch.
    ("float32", "cam_vs_torch"): (1e-4, 1e-5),
}


def tolerance(dtype, kind):
    """(rtol, atol) for comparing arrays of `dtype` in a comparison of `kind`."""
    return TOLERANCES[(np.dtype(dtype).name, kind)]


def assert_close(actual, expected, kind="vs_torch", dtype=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    rtol, atol = tolerance(dtype or actual.dtype, kind)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


SUPPORTED_ISAS = [isa for isa in _C.compiled_isas() if _C.cpu_supports(isa)]


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    """Runs the test once per kernel variant this CPU supports, then restores the original."""
    original = _C.isa()
    _C._select_isa(request.param)
    try:
        yield request.param
    finally:
        _C._select_isa(original)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Runs the test with 1 and with 2 threads, then restores the original count."""
    original = ce.get_num_threads()
    ce.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        ce.set_num_threads(original)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
