"""Convolution benchmark: convengine against torch (best of NCHW and channels_last) and the NumPy
reference, per pass (forward / backward-input / backward-weight), same run, same inputs.

Two ways to run it:

    pytest benchmarks/bench_conv.py --benchmark-only      # pytest-benchmark: one test per
                                                          # (shape, pass, implementation), 2 threads
    python benchmarks/bench_conv.py [--threads 1 2] [--shapes resnet_l1 ...] [--no-reference]

The script prints, for the issue's shape table (convengine.bench.shapes: CONV2D, CONV3D,
CONV_TRANSPOSE2D) and each thread count: ms per pass (median of repeated runs) for ours, torch
NCHW, torch channels_last and the NumPy reference (skipped when one call takes longer than
--reference-limit seconds), GFLOP/s, the ratio ours / torch's best, our peak workspace (the C++
high-water mark) and the peak extra resident memory of our call (outputs included); then the
geometric mean of the ratios. torch gets torch.set_num_threads(threads), ours
convengine.set_num_threads(threads). Passes are timed as the autograd layer runs them:
backward-input and backward-weight separately (torch through aten.convolution_backward with one
output_mask entry set), the bias gradient not included. Allocator: both sides allocate their
outputs with glibc malloc (numpy and torch's default CPU allocator), fresh each call.
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import pytest

import convengine as ce
from convengine import _C
from convengine.backends import reference as R
from convengine.bench import shapes
from convengine.bench.cases import torch_or_none
from convengine.bench.memory import peak_extra_memory
from convengine.bench.timing import time_call
from convengine.kernels import conv as K

PASSES = ("forward", "backward_input", "backward_weight")


class Problem:
    """One benchmark shape: its arrays and, per pass, the callables of every implementation."""

    def __init__(self, name, kind, x_shape, w_shape, stride, padding, groups, forward_only=False):
        self.name, self.kind = name, kind
        self.x_shape, self.w_shape = x_shape, w_shape
        self.stride, self.padding, self.groups = stride, padding, groups
        self.forward_only = forward_only
        nd = len(x_shape) - 2
        self.nd = nd
        if kind == "conv":
            *_, self.y_shape = K.conv_geometry(name, x_shape, w_shape, stride, padding, 1, groups)
            conv_in, conv_out, oc = x_shape, self.y_shape, w_shape[0]
        else:  # transposed: the adjoint of the conv (y_shape -> x_shape)
            *_, self.y_shape = K.conv_transpose_geometry(name, x_shape, w_shape, stride, padding,
                                                         0, 1, groups)
            conv_in, conv_out, oc = self.y_shape, x_shape, w_shape[0]
        taps = math.prod(w_shape[2:])
        cg = conv_in[1] // groups
        # 2 * (multiply-adds of the convolution), the same for all three passes
        self.flops = 2.0 * conv_out[0] * oc * math.prod(conv_out[2:]) * cg * taps

    def passes(self):
        return PASSES[:1] if self.forward_only else PASSES

    def arrays(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(self.x_shape, dtype=np.float32)
        w = rng.standard_normal(self.w_shape, dtype=np.float32) * np.float32(0.1)
        bias_len = self.w_shape[0] if self.kind == "conv" else self.w_shape[1] * self.groups
        b = rng.standard_normal(bias_len, dtype=np.float32)
        gy = rng.standard_normal(self.y_shape, dtype=np.float32)
        return x, w, b, gy

    def calls(self, lib, pass_, x, w, b, gy):
        """The pass as a call into `lib`: convengine.kernels.conv (ours) or the NumPy reference,
        which take the same arguments."""
        s, p, g = self.stride, self.padding, self.groups
        if self.kind == "conv":
            return {
                "forward": lambda: lib.conv_forward(x, w, b, s, p, 1, g),
                "backward_input": lambda: lib.conv_backward_input(gy, w, x.shape, s, p, 1, g),
                "backward_weight": lambda: lib.conv_backward_weight(gy, x, w.shape, s, p, 1, g),
            }[pass_]
        return {
            "forward": lambda: lib.conv_transpose_forward(x, w, b, s, p, 0, 1, g),
            "backward_input": lambda: lib.conv_transpose_backward_input(gy, w, x.shape, s, p, 0,
                                                                        1, g),
            "backward_weight": lambda: lib.conv_transpose_backward_weight(gy, x, w.shape, s, p,
                                                                          0, 1, g),
        }[pass_]

    def torch_impls(self, pass_, x, w, b, gy):
        """{'torch': fn, 'torch_cl': fn} (NCHW and channels_last), or {} without torch."""
        torch = torch_or_none()
        if torch is None:
            return {}
        fmt = {1: None, 2: torch.channels_last, 3: torch.channels_last_3d}[self.nd]
        nd, transposed = self.nd, self.kind == "transpose"
        stride = [self.stride] * nd
        padding = [self.padding] * nd
        impls = {}
        for label, layout in (("torch", None), ("torch_cl", fmt)):
            if label == "torch_cl" and layout is None:
                continue
            tx, tw, tb, tg = (torch.from_numpy(a) for a in (x, w, b, gy))
            if layout is not None:
                tx, tw, tg = (t.contiguous(memory_format=layout) for t in (tx, tw, tg))
            if pass_ == "forward":
                fn = getattr(torch.nn.functional,
                             f"conv_transpose{nd}d" if transposed else f"conv{nd}d")

                def run(fn=fn, tx=tx, tw=tw, tb=tb):
                    with torch.no_grad():
                        return fn(tx, tw, tb, stride=self.stride, padding=self.padding,
                                  groups=self.groups)
            else:
                mask = [pass_ == "backward_input", pass_ == "backward_weight", False]

                def run(tx=tx, tw=tw, tg=tg, mask=mask):
                    with torch.no_grad():
                        return torch.ops.aten.convolution_backward(
                            tg, tx, tw, None, stride, padding, [1] * nd, transposed, [0] * nd,
                            self.groups, mask)
            impls[label] = run
        return impls


def problems():
    out = []
    for name, (n, c, h, w, k, r, s, stride, pad, groups) in shapes.CONV2D.items():
        out.append(Problem(name, "conv", (n, c, h, w), (k, c // groups, r, s), stride, pad,
                           groups, forward_only=name in shapes.CONV2D_FORWARD_ONLY))
    for name, (n, c, d, h, w, k, ks, stride, pad) in shapes.CONV3D.items():
        out.append(Problem(name, "conv", (n, c, d, h, w), (k, c, ks, ks, ks), stride, pad, 1))
    for name, (n, c, h, w, k, ks, stride) in shapes.CONV_TRANSPOSE2D.items():
        out.append(Problem(name, "transpose", (n, c, h, w), (c, k, ks, ks), stride, 0, 1))
    return out


def _set_threads(threads):
    ce.set_num_threads(threads)
    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- #
# pytest-benchmark
# --------------------------------------------------------------------------- #

_PROBLEMS = {p.name: p for p in problems()}
_PARAMS = [(name, pass_, impl) for name, p in _PROBLEMS.items() for pass_ in p.passes()
           for impl in ("convengine", "torch", "torch_cl")]


@pytest.mark.parametrize("name, pass_, impl", _PARAMS,
                         ids=[f"{n}-{p}-{i}" for n, p, i in _PARAMS])
def test_conv_pass(benchmark, name, pass_, impl):
    problem = _PROBLEMS[name]
    threads = 2
    _set_threads(threads)
    arrays = problem.arrays()
    if impl == "convengine":
        fn = problem.calls(K, pass_, *arrays)
    else:
        fn = problem.torch_impls(pass_, *arrays).get(impl)
        if fn is None:
            pytest.skip(f"{impl} not available")
    benchmark.group = f"{name}/{pass_}"
    benchmark.extra_info.update(threads=threads, gflop=problem.flops / 1e9)
    benchmark.pedantic(fn, warmup_rounds=1, rounds=5, iterations=1)


# --------------------------------------------------------------------------- #
# script mode
# --------------------------------------------------------------------------- #

def _ms(t):
    return f"{t * 1e3:9.2f}" if t is not None else "        -"


def run(selected, thread_counts, reference_limit, repeats_time):
    torch = torch_or_none()
    print(f"convengine {ce.__version__} isa={_C.isa()}; torch "
          f"{torch.__version__ if torch else 'not installed'}; numpy {np.__version__}; "
          f"workspace limit {ce.get_workspace_limit() >> 20} MiB; cpus {os.cpu_count()}")
    print("times: median ms; ratio = ours / min(torch NCHW, torch channels_last) of the medians; "
          "r_min = the same ratio of the best runs; ws = our workspace high-water mark; rss = peak "
          "extra resident memory of our call (outputs included); load = cores' worth of CPU other "
          "processes used while ours was timed\n")
    ratios = {t: [] for t in thread_counts}
    ratios_min = {t: [] for t in thread_counts}
    for threads in thread_counts:
        _set_threads(threads)
        print(f"=== {threads} thread{'s' if threads > 1 else ''} ===")
        print(f"{'shape':16s} {'pass':16s} {'ours':>9s} {'torch':>9s} {'torch_cl':>9s} "
              f"{'numpy':>9s} {'GFLOP/s':>8s} {'torchGF':>8s} {'ratio':>6s} {'ws MiB':>7s} "
              f"{'rss MiB':>7s} {'r_min':>6s} {'load':>5s}  algorithm")
        for problem in selected:
            arrays = problem.arrays()
            skip_reference = reference_limit <= 0
            for pass_ in problem.passes():
                ours = problem.calls(K, pass_, *arrays)
                # peak memory of our call: workspace high-water mark (from an empty buffer, so
                # that it is this call's need) and resident set growth
                ours()
                _C.release_workspace()
                _C.reset_workspace_peak()
                rss = peak_extra_memory(ours)
                ws = _C.workspace_peak_bytes()
                timing = time_call(ours, min_time=repeats_time)
                t_ours, t_ours_min = timing.median, timing.min
                load = timing.other_cpu_load
                torch_times, torch_min = {}, {}
                for label, fn in problem.torch_impls(pass_, *arrays).items():
                    tt = time_call(fn, min_time=repeats_time)
                    torch_times[label], torch_min[label] = tt.median, tt.min
                t_ref = None
                if not skip_reference:
                    ref = problem.calls(R, pass_, *arrays)
                    start = time.perf_counter()
                    ref()
                    first = time.perf_counter() - start
                    if first > reference_limit:
                        skip_reference = True
                        t_ref = first
                    else:
                        t_ref = time_call(ref, warmup=0, min_repeats=3, max_repeats=5,
                                          min_time=0).median
                best = min(torch_times.values()) if torch_times else None
                ratio = t_ours / best if best else float("nan")
                if best:
                    ratios[threads].append(ratio)
                    ratios_min[threads].append(t_ours_min / min(torch_min.values()))
                ours()
                algo = _C.conv_last_algorithm()
                if problem.kind != "conv":
                    algo = f"{algo} (as conv " + {"forward": "backward_input",
                                                   "backward_input": "forward",
                                                   "backward_weight": "backward_weight"}[pass_] + ")"
                print(f"{problem.name:16s} {pass_:16s} {_ms(t_ours)} "
                      f"{_ms(torch_times.get('torch'))} {_ms(torch_times.get('torch_cl'))} "
                      f"{_ms(t_ref)} {problem.flops / t_ours / 1e9:8.1f} "
                      f"{(problem.flops / best / 1e9) if best else float('nan'):8.1f} "
                      f"{ratio:6.2f} {ws / 2**20:7.1f} "
                      f"{(rss or 0) / 2**20:7.1f} {t_ours_min / min(torch_min.values()) if torch_min else float('nan'):6.2f} "
                      f"{load:5.2f}  {algo}", flush=True)
        if ratios[threads]:
            geo = math.exp(sum(math.log(r) for r in ratios[threads]) / len(ratios[threads]))
            geo_min = math.exp(sum(math.log(r) for r in ratios_min[threads]) / len(ratios_min[threads]))
            print(f"geometric mean of ratios ({threads} thread{'s' if threads > 1 else ''}, "
                  f"{len(ratios[threads])} passes): {geo:.3f} (medians), {geo_min:.3f} (best "
                  f"runs); worst {max(ratios[threads]):.2f} (medians), "
                  f"{max(ratios_min[threads]):.2f} (best runs)\n")
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", default=None,
                        help=f"names from: {', '.join(p.name for p in problems())}")
    parser.add_argument("--reference-limit", type=float, default=3.0,
                        help="skip the NumPy reference for a shape once one call takes longer "
                             "than this many seconds (0: never run it)")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds of repeated calls per timing (at least 5 calls)")
    args = parser.parse_args(argv)
    selected = problems()
    if args.shapes:
        unknown = set(args.shapes) - {p.name for p in selected}
        if unknown:
            parser.error(f"unknown shapes {sorted(unknown)}")
        selected = [p for p in selected if p.name in args.shapes]
    run(selected, args.threads, 0 if args.no_reference else args.reference_limit, args.min_time)


if __name__ == "__main__":
    sys.exit(main())
