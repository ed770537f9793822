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


def _torch():
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
        torch = _torch()
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
        torch = _torch()
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
    ]
