"""Benchmark cases: what to run for convengine and for each reference, built lazily.

A Case's setup() allocates its inputs and returns {implementation name: zero-argument callable};
the first entry is convengine's, the others are references (numpy, torch, torch_cl = torch with
channels_last tensors). Every callable returns its result, which is checked against
convengine's before anything is timed.
"""

import dataclasses
from typing import Callable

import numpy as np

from .. import _C
from . import shapes


@dataclasses.dataclass
class Case:
    name: str
    group: str
    flops: float
    setup: Callable[[int], dict]   # threads -> {implementation: callable}
    quick: bool = False


def torch_or_none():
    """torch when it imports, else None (every torch column is optional)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _rng():
    return np.random.default_rng(0)


# ----- GEMM -------------------------------------------------------------------------------------

def _gemm_case(name, m, k, n, trans_a=False, trans_b=False, quick=False):
    """op(A) is m x k, op(B) is k x n; a transposed operand is stored transposed (as the
    convolution's backward passes have it) and NumPy/torch get the matching transposed view."""

    def setup(threads):
        rng = _rng()
        a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
        a_op = a.T if trans_a else a
        b_op = b.T if trans_b else b
        impls = {
            "convengine": lambda: _C.sgemm(a, b, trans_a=trans_a, trans_b=trans_b),
            "numpy": lambda: np.matmul(a_op, b_op),
        }
        torch = torch_or_none()
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            ta_op = ta.T if trans_a else ta
            tb_op = tb.T if trans_b else tb
            impls["torch"] = lambda: torch.matmul(ta_op, tb_op).numpy()
        return impls

    return Case(name, "gemm", 2.0 * m * n * k, setup, quick)


def gemm_cases():
    cases = [_gemm_case(f"gemm/square_{s}", s, s, s, quick=s in (512, 1024))
             for s in shapes.GEMM_SQUARE]
    for m, k, n in shapes.GEMM_IM2COL:
        tag = f"{m}x{k}x{n}"
        cases.append(_gemm_case(f"gemm/im2col_{tag}/forward", m, k, n, quick=m == 128))
        # input gradient: (K, N) = A^T (K, M) @ dC (M, N)
        cases.append(_gemm_case(f"gemm/im2col_{tag}/backward_input", k, m, n, trans_a=True,
                                quick=m == 128))
        # weight gradient: (M, K) = dC (M, N) @ B^T (N, K)
        cases.append(_gemm_case(f"gemm/im2col_{tag}/backward_weight", m, n, k, trans_b=True,
                                quick=m == 128))
    return cases


# ----- element-wise -----------------------------------------------------------------------------

def _elementwise_case(name, ours, numpy_fn, torch_fn, arity, quick):
    def setup(threads):
        rng = _rng()
        arrays = [rng.standard_normal(shapes.ELEMENTWISE_SHAPE, dtype=np.float32)
                  for _ in range(arity)]
        impls = {"convengine": lambda: ours(*arrays), "numpy": lambda: numpy_fn(*arrays)}
        torch = torch_or_none()
        if torch is not None:
            tensors = [torch.from_numpy(a) for a in arrays]
            impls["torch"] = lambda: torch_fn(torch, *tensors).numpy()
        return impls

    return Case(f"elementwise/{name}", "elementwise", 0.0, setup, quick)


def elementwise_cases():
    return [
        _elementwise_case("add", _C.add, np.add, lambda t, a, b: t.add(a, b), 2, True),
        _elementwise_case("exp", _C.exp, np.exp, lambda t, a: t.exp(a), 1, True),
        _elementwise_case("relu", _C.relu, lambda a: np.maximum(a, 0),
                          lambda t, a: t.relu(a), 1, False),
        _elementwise_case("sum", lambda a: np.float32(_C.sum(a)), np.sum,
                          lambda t, a: t.sum(a), 1, False),
    ] + activation_cases()


def activation_cases():
    """Activation kernels against NumPy float32 and torch (forward)."""
    from ..kernels import activation as A

    def np_softmax(a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def np_gelu_tanh(a):
        return 0.5 * a * (1 + np.tanh(np.float32(0.7978845608) * (a + np.float32(0.044715) * a**3)))

    return [
        _elementwise_case("sigmoid", A.sigmoid, lambda a: 1 / (1 + np.exp(-a)),
                          lambda t, a: t.sigmoid(a), 1, False),
        _elementwise_case("tanh", A.tanh, np.tanh, lambda t, a: t.tanh(a), 1, False),
        _elementwise_case("gelu_tanh", lambda a: A.gelu(a, "tanh"), np_gelu_tanh,
                          lambda t, a: t.nn.functional.gelu(a, approximate="tanh"), 1, False),
        _elementwise_case("softmax_dim1", lambda a: A.softmax(a, 1), np_softmax,
                          lambda t, a: t.softmax(a, 1), 1, True),
    ]
