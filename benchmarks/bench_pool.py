"""Pooling and activation benchmark: convengine against torch (NCHW and channels_last) and the
NumPy reference, forward and backward, same run, same inputs.

Two ways to run it:

    pytest benchmarks/bench_pool.py --benchmark-only     # pytest-benchmark: one test per
                                                         # (case, pass, implementation), 2 threads
    python benchmarks/bench_pool.py [--threads 1 2] [--filter REGEX] [--no-reference]

Shapes (convengine.bench.shapes): POOL on 8x64x112x112 (max 2x2/2, max 3x3/2 pad 1, avg 2x2/2)
and adaptive average to 1x1 on 8x512x7x7; activations on ELEMENTWISE_SHAPE (8x64x56x56).
Passes: "forward" (inference: values only), "forward+idx" (max pooling as training runs it,
with int64 indices), "backward" (the input gradient from the saved indices / input / output,
torch through its aten backward op). The script prints the median ms of each implementation,
the ratio ours / torch's best layout, and the CPU time other processes used meanwhile (cores'
worth: timings on a shared machine are only as good as that number is small). torch gets
torch.set_num_threads(threads), ours convengine.set_num_threads(threads). Allocator: both sides
allocate their outputs with glibc malloc (numpy and torch's default CPU allocator), fresh each
call.
"""

import argparse
import re
import sys

import numpy as np
import pytest

import convengine as ce
from convengine.backends import reference as R
from convengine.bench import shapes
from convengine.bench.cases import torch_or_none
from convengine.bench.timing import time_call
from convengine.functions import pooling as pooling_functions
from convengine.kernels import activation as KA
from convengine.kernels import pool as KP

IMPLEMENTATIONS = ("convengine", "torch", "torch_cl", "numpy")


def _torch_layouts(torch, x, grad):
    """(label, x, grad) as torch tensors in NCHW ('torch') and channels_last ('torch_cl')."""
    for label, fmt in (("torch", torch.contiguous_format), ("torch_cl", torch.channels_last)):
        yield (label, torch.from_numpy(x).contiguous(memory_format=fmt),
               torch.from_numpy(grad).contiguous(memory_format=fmt))


class Case:
    """One (shape, op, pass): a name and a function building {implementation: callable}."""

    def __init__(self, name, build):
        self.name, self.build = name, build


# ----- pooling -----------------------------------------------------------------------------------

def _pool_cases():
    cases = []
    for name, (shape, kind, kernel, stride, pad) in shapes.POOL.items():
        def arrays(shape=shape):
            rng = np.random.default_rng(0)
            return rng.standard_normal(shape, dtype=np.float32)

        if kind == "max":
            cases += [Case(f"{name}/forward", lambda a=arrays, k=kernel, s=stride, p=pad:
                           _max_pool(a(), k, s, p, "forward")),
                      Case(f"{name}/forward+idx", lambda a=arrays, k=kernel, s=stride, p=pad:
                           _max_pool(a(), k, s, p, "forward+idx")),
                      Case(f"{name}/backward", lambda a=arrays, k=kernel, s=stride, p=pad:
                           _max_pool(a(), k, s, p, "backward"))]
        elif kind == "avg":
            cases += [Case(f"{name}/{p_}", lambda a=arrays, k=kernel, s=stride, p=pad, p_=p_:
                           _avg_pool(a(), k, s, p, p_)) for p_ in ("forward", "backward")]
        else:  # adaptive average to 1x1
            cases += [Case(f"{name}/{p_}", lambda a=arrays, p_=p_: _adaptive_avg(a(), p_))
                      for p_ in ("forward", "backward")]
    return cases


def _max_pool(x, k, s, p, which):
    torch = torch_or_none()
    out, idx = KP.max_pool_forward(x, k, s, p, return_indices=True)
    grad = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)
    impls = {}
    if which == "forward":
        impls["convengine"] = lambda: KP.max_pool_forward(x, k, s, p)
        impls["numpy"] = lambda: R.max_pool_forward(x, k, s, p)[0]
    elif which == "forward+idx":
        impls["convengine"] = lambda: KP.max_pool_forward(x, k, s, p, return_indices=True)[0]
        impls["numpy"] = lambda: R.max_pool_forward(x, k, s, p)[0]
    else:
        impls["convengine"] = lambda: KP.max_pool_backward(grad, idx, x.shape)
        impls["numpy"] = lambda: R.max_pool_backward(grad, idx, x.shape)
    if torch is not None:
        tf, aten = torch.nn.functional, torch.ops.aten
        for layout, tx, tgrad in _torch_layouts(torch, x, grad):
            tidx = tf.max_pool2d(tx, k, s, p, return_indices=True)[1]
            if which == "forward":
                impls[layout] = lambda tx=tx: tf.max_pool2d(tx, k, s, p).numpy()
            elif which == "forward+idx":
                impls[layout] = lambda tx=tx: tf.max_pool2d(tx, k, s, p,
                                                            return_indices=True)[0].numpy()
            else:
                impls[layout] = lambda tx=tx, tg=tgrad, ti=tidx: (
                    aten.max_pool2d_with_indices_backward(tg, tx, [k, k], [s, s], [p, p], [1, 1],
                                                          False, ti).numpy())
    return impls


def _avg_pool(x, k, s, p, which):
    torch = torch_or_none()
    out = KP.avg_pool_forward(x, k, s, p)
    grad = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)
    if which == "forward":
        impls = {"convengine": lambda: KP.avg_pool_forward(x, k, s, p),
                 "numpy": lambda: R.avg_pool_forward(x, k, s, p)}
    else:
        impls = {"convengine": lambda: KP.avg_pool_backward(grad, x.shape, k, s, p),
                 "numpy": lambda: R.avg_pool_backward(grad, x.shape, k, s, p)}
    if torch is not None:
        tf, aten = torch.nn.functional, torch.ops.aten
        for layout, tx, tgrad in _torch_layouts(torch, x, grad):
            if which == "forward":
                impls[layout] = lambda tx=tx: tf.avg_pool2d(tx, k, s, p).numpy()
            else:
                impls[layout] = lambda tx=tx, tg=tgrad: aten.avg_pool2d_backward(
                    tg, tx, [k, k], [s, s], [p, p], False, True, None).numpy()
    return impls


def _adaptive_avg(x, which):
    torch = torch_or_none()
    grad = np.random.default_rng(1).standard_normal(x.shape[:2] + (1, 1), dtype=np.float32)
    if which == "forward":
        impls = {"convengine": lambda: KP.adaptive_avg_pool_forward(x, (1, 1)),
                 "numpy": lambda: pooling_functions._adaptive_avg_numpy(x, (1, 1))}
    else:
        impls = {"convengine": lambda: KP.adaptive_avg_pool_backward(grad, x.shape),
                 "numpy": lambda: pooling_functions._adaptive_avg_backward_numpy(grad, x.shape)}
    if torch is not None:
        tf, aten = torch.nn.functional, torch.ops.aten
        for layout, tx, tgrad in _torch_layouts(torch, x, grad):
            if which == "forward":
                impls[layout] = lambda tx=tx: tf.adaptive_avg_pool2d(tx, 1).numpy()
            else:
                impls[layout] = lambda tx=tx, tg=tgrad: aten._adaptive_avg_pool2d_backward(
                    tg, tx).numpy()
    return impls


# ----- activations -------------------------------------------------------------------------------

BETA, KAPPA = np.float32(np.sqrt(2 / np.pi)), np.float32(0.044715)


def _erf_numpy(x):
    try:
        from scipy.special import erf
    except ImportError:
        return np.vectorize(__import__("math").erf, otypes=[x.dtype])(x)
    return erf(x)


def _softmax_numpy(x, dim, log):
    shifted = x - x.max(axis=dim, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=dim, keepdims=True)
    return shifted - np.log(s) if log else e / s


# name -> (ours forward, ours backward(grad, x, y), numpy forward, torch forward(F, t),
#          torch backward(aten, grad, x, y), softmax dim or None)
ACTIVATIONS = {
    "relu": (KA.relu, lambda g, x, y: KA.relu_backward(g, x), lambda x: np.maximum(x, 0),
             lambda F, t: F.relu(t), lambda a, g, x, y: a.threshold_backward(g, y, 0), None),
    "leaky_relu": (lambda x: KA.leaky_relu(x, 0.01),
                   lambda g, x, y: KA.leaky_relu_backward(g, x, 0.01),
                   lambda x: np.where(x > 0, x, x * np.float32(0.01)),
                   lambda F, t: F.leaky_relu(t, 0.01),
                   lambda a, g, x, y: a.leaky_relu_backward(g, x, 0.01, False), None),
    "elu": (lambda x: KA.elu(x, 1.0), lambda g, x, y: KA.elu_backward(g, x, 1.0),
            lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda F, t: F.elu(t), lambda a, g, x, y: a.elu_backward(g, 1.0, 1, 1, False, x),
            None),
    "gelu": (KA.gelu, lambda g, x, y: KA.gelu_backward(g, x),
             lambda x: x * np.float32(0.5) * (1 + _erf_numpy(x / np.float32(np.sqrt(2)))),
             lambda F, t: F.gelu(t), lambda a, g, x, y: a.gelu_backward(g, x), None),
    "gelu_tanh": (lambda x: KA.gelu(x, "tanh"), lambda g, x, y: KA.gelu_backward(g, x, "tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(BETA * (x + KAPPA * x * x * x))),
                  lambda F, t: F.gelu(t, approximate="tanh"),
                  lambda a, g, x, y: a.gelu_backward(g, x, approximate="tanh"), None),
    "sigmoid": (KA.sigmoid, lambda g, x, y: KA.sigmoid_backward(g, y),
                lambda x: 1 / (1 + np.exp(-x)), lambda F, t: F.sigmoid(t),
                lambda a, g, x, y: a.sigmoid_backward(g, y), None),
    "tanh": (KA.tanh, lambda g, x, y: KA.tanh_backward(g, y), np.tanh, lambda F, t: F.tanh(t),
             lambda a, g, x, y: a.tanh_backward(g, y), None),
    "softmax_dim1": (lambda x: KA.softmax(x, 1), lambda g, x, y: KA.softmax_backward(g, y, 1),
                     lambda x: _softmax_numpy(x, 1, False), lambda F, t: F.softmax(t, 1),
                     lambda a, g, x, y: a._softmax_backward_data(g, y, 1, y.dtype), 1),
    "log_softmax_dim1": (lambda x: KA.log_softmax(x, 1),
                         lambda g, x, y: KA.log_softmax_backward(g, y, 1),
                         lambda x: _softmax_numpy(x, 1, True), lambda F, t: F.log_softmax(t, 1),
                         lambda a, g, x, y: a._log_softmax_backward_data(g, y, 1, y.dtype), 1),
    "softmax_last": (lambda x: KA.softmax(x, -1), lambda g, x, y: KA.softmax_backward(g, y, -1),
                     lambda x: _softmax_numpy(x, -1, False), lambda F, t: F.softmax(t, -1),
                     lambda a, g, x, y: a._softmax_backward_data(g, y, -1, y.dtype), -1),
}


def _activation_cases():
    cases = []
    for name in ACTIVATIONS:
        for which in ("forward", "backward"):
            cases.append(Case(f"act_{name}/{which}", lambda n=name, w=which: _activation(n, w)))
    return cases


def _activation(name, which):
    fwd, bwd, np_fwd, t_fwd, t_bwd, dim = ACTIVATIONS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shapes.ELEMENTWISE_SHAPE, dtype=np.float32)
    y = fwd(x)
    g = rng.standard_normal(x.shape, dtype=np.float32)
    if which == "forward":
        impls = {"convengine": lambda: fwd(x), "numpy": lambda: np_fwd(x)}
    else:
        impls = {"convengine": lambda: bwd(g, x, y)}
    torch = torch_or_none()
    if torch is not None:
        layouts = [("torch", torch.contiguous_format)]
        if dim is not None:  # only softmax cares: channels_last makes dim 1 contiguous
            layouts.append(("torch_cl", torch.channels_last))
        for layout, fmt in layouts:
            tx = torch.from_numpy(x).contiguous(memory_format=fmt)
            ty = t_fwd(torch.nn.functional, tx)
            tg = torch.from_numpy(g).contiguous(memory_format=fmt)
            if which == "forward":
                impls[layout] = lambda tx=tx: t_fwd(torch.nn.functional, tx).numpy()
            else:
                impls[layout] = (lambda tx=tx, ty=ty, tg=tg:
                                 t_bwd(torch.ops.aten, tg, tx, ty).numpy())
    return impls


def all_cases():
    return _pool_cases() + _activation_cases()


# ----- running -----------------------------------------------------------------------------------

def set_threads(n):
    ce.set_num_threads(n)
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(n)


def check_agreement(name, impls):
    """Every implementation's result must match ours before anything is timed."""
    ours = np.asarray(impls["convengine"]())
    for impl, fn in impls.items():
        if impl == "convengine":
            continue
        theirs = np.asarray(fn())
        if not np.allclose(ours, theirs, rtol=1e-4, atol=1e-5, equal_nan=True):
            raise AssertionError(f"{name}: {impl} disagrees with convengine "
                                 f"(max |diff| {np.nanmax(np.abs(ours - theirs)):.3g})")


def run(threads_list, pattern=None, reference=True, out=sys.stdout):
    cases = [c for c in all_cases() if not pattern or re.search(pattern, c.name)]
    rows = []
    header = (f"{'case':34s} {'thr':>3s} {'ours ms':>9s} {'torch':>9s} {'torch_cl':>9s} "
              f"{'numpy':>9s} {'ours/torch':>10s} {'load':>5s}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for threads in threads_list:
        set_threads(threads)
        for case in cases:
            impls = case.build()
            if not reference:
                impls.pop("numpy", None)
            check_agreement(case.name, impls)
            ms, load = {}, 0.0
            for impl in IMPLEMENTATIONS:
                if impl not in impls:
                    continue
                slow = impl == "numpy"
                t = time_call(impls[impl], warmup=1, min_repeats=3 if slow else 7,
                              max_repeats=3 if slow else 40, min_time=0.0 if slow else 0.3)
                ms[impl] = t.median * 1e3
                if impl == "convengine":
                    load = t.other_cpu_load
            best = min([ms[i] for i in ("torch", "torch_cl") if i in ms], default=float("nan"))
            ratio = ms["convengine"] / best
            rows.append((case.name, threads, ms, ratio))

            def cell(i):
                return f"{ms[i]:9.3f}" if i in ms else f"{'-':>9s}"

            print(f"{case.name:34s} {threads:3d} {cell('convengine')} {cell('torch')} "
                  f"{cell('torch_cl')} {cell('numpy')} {ratio:10.2f} {load:5.2f}", file=out,
                  flush=True)
    ratios = [r for *_, r in rows if np.isfinite(r)]
    if ratios:
        print(f"geometric mean ours / torch best over {len(ratios)} rows: "
              f"{float(np.exp(np.mean(np.log(ratios)))):.3f}", file=out)
    return rows


# ----- pytest-benchmark ------------------------------------------------------------------------

PARAMS = [(c, i) for c in all_cases() for i in IMPLEMENTATIONS]


@pytest.fixture(scope="module")
def two_threads():
    original = ce.get_num_threads()
    set_threads(2)
    yield
    set_threads(original)


@pytest.mark.parametrize("case, impl", PARAMS, ids=[f"{c.name}-{i}" for c, i in PARAMS])
def test_bench(benchmark, two_threads, case, impl):
    impls = case.build()
    if impl not in impls:
        pytest.skip(f"{impl} is not available for {case.name}")
    benchmark.group = case.name
    benchmark(impls[impl])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default=None, help="regex on case names")
    parser.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    args = parser.parse_args(argv)
    print(f"convengine {ce.__version__}, ISA {ce._C.isa()}; torch "
          f"{getattr(torch_or_none(), '__version__', 'not installed')}")
    run(args.threads, args.filter, not args.no_reference)


if __name__ == "__main__":
    main()
