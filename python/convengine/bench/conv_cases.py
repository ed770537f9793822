"""Convolution and pooling cases: each pass of each shape in bench.shapes, against torch (NCHW
and channels_last) and, where it finishes in reasonable time, the NumPy reference.

Passes are timed as the autograd layer runs them: forward, backward-input and backward-weight
separately (torch through aten.convolution_backward with one output_mask entry set).
"""

import math

import numpy as np

from ..backends import reference as R
from ..kernels import conv as K
from ..kernels import pool as P
from . import shapes
from .cases import Case, torch_or_none

PASSES = ("forward", "backward_input", "backward_weight")

# Shapes whose NumPy-reference passes take over a few seconds each: timed without it.
SLOW_FOR_REFERENCE = {"resnet_stem", "vgg_c1_2", "unet_ct_in", "conv3d_ct", "resnet_l1",
                      "resnet_l2_down", "depthwise"}

QUICK = {"mnist_c2", "resnet_l1", "resnet_l3", "depthwise", "resnet_1x1_down"}


class ConvProblem:
    """One convolution shape (plain or transposed) and its three passes."""

    def __init__(self, name, transposed, x_shape, w_shape, stride, padding, groups=1):
        self.name, self.transposed = name, transposed
        self.x_shape, self.w_shape = x_shape, w_shape
        self.stride, self.padding, self.groups = stride, padding, groups
        self.nd = len(x_shape) - 2
        if transposed:
            *_, self.y_shape = K.conv_transpose_geometry(name, x_shape, w_shape, stride, padding,
                                                         0, 1, groups)
            conv_in, conv_out = self.y_shape, x_shape   # the conv whose adjoint this is
            out_channels = w_shape[0]
        else:
            *_, self.y_shape = K.conv_geometry(name, x_shape, w_shape, stride, padding, 1, groups)
            conv_in, conv_out = x_shape, self.y_shape
            out_channels = w_shape[0]
        # 2 * multiply-adds of the convolution; the same for each of the three passes.
        self.flops = (2.0 * conv_out[0] * out_channels * math.prod(conv_out[2:])
                      * (conv_in[1] // groups) * math.prod(w_shape[2:]))

    def arrays(self):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(self.x_shape, dtype=np.float32)
        w = rng.standard_normal(self.w_shape, dtype=np.float32) * np.float32(0.1)
        gy = rng.standard_normal(self.y_shape, dtype=np.float32)
        return x, w, gy

    def _calls(self, lib, x, w, gy):
        s, p, g = self.stride, self.padding, self.groups
        if self.transposed:
            return {
                "forward": lambda: lib.conv_transpose_forward(x, w, None, s, p, 0, 1, g),
                "backward_input": lambda: lib.conv_transpose_backward_input(
                    gy, w, x.shape, s, p, 0, 1, g),
                "backward_weight": lambda: lib.conv_transpose_backward_weight(
                    gy, x, w.shape, s, p, 0, 1, g),
            }
        return {
            "forward": lambda: lib.conv_forward(x, w, None, s, p, 1, g),
            "backward_input": lambda: lib.conv_backward_input(gy, w, x.shape, s, p, 1, g),
            "backward_weight": lambda: lib.conv_backward_weight(gy, x, w.shape, s, p, 1, g),
        }

    def ours(self, pass_, x, w, gy):
        return self._calls(K, x, w, gy)[pass_]

    def reference(self, pass_, x, w, gy):
        return self._calls(R, x, w, gy)[pass_]

    def torch_calls(self, pass_, x, w, gy):
        """{'torch': fn, 'torch_cl': fn} (NCHW and channels_last), {} without torch."""
        torch = torch_or_none()
        if torch is None:
            return {}
        layouts = {"torch": None}
        if self.nd in (2, 3):
            layouts["torch_cl"] = torch.channels_last if self.nd == 2 else torch.channels_last_3d
        nd, s, p = self.nd, [self.stride] * self.nd, [self.padding] * self.nd
        calls = {}
        for label, layout in layouts.items():
            tx, tw, tg = (torch.from_numpy(a) for a in (x, w, gy))
            if layout is not None:
                tx, tw, tg = (t.contiguous(memory_format=layout) for t in (tx, tw, tg))
            mask = [pass_ == "backward_input", pass_ == "backward_weight", False]

            def run(tx=tx, tw=tw, tg=tg, mask=mask):
                with torch.no_grad():
                    if pass_ == "forward":
                        out = torch.ops.aten.convolution(tx, tw, None, s, p, [1] * nd,
                                                         self.transposed, [0] * nd, self.groups)
                    else:
                        grads = torch.ops.aten.convolution_backward(
                            tg, tx, tw, None, s, p, [1] * nd, self.transposed, [0] * nd,
                            self.groups, mask)
                        out = grads[0] if mask[0] else grads[1]
                # A strided NCHW view of a channels_last result: no layout conversion is
                # timed, as in benchmarks/bench_conv.py (the check reads it through its strides).
                return out.numpy()

            calls[label] = run
        return calls


def conv_problems():
    problems = []
    for name, (n, c, h, w, k, r, s, stride, pad, groups) in shapes.CONV2D.items():
        problems.append(ConvProblem(name, False, (n, c, h, w), (k, c // groups, r, s), stride,
                                    pad, groups))
    for name, (n, c, d, h, w, k, ks, stride, pad) in shapes.CONV3D.items():
        problems.append(ConvProblem(name, False, (n, c, d, h, w), (k, c, ks, ks, ks), stride,
                                    pad))
    for name, (n, c, h, w, k, ks, stride) in shapes.CONV_TRANSPOSE2D.items():
        problems.append(ConvProblem(name, True, (n, c, h, w), (c, k, ks, ks), stride, 0))
    return problems


def _conv_case(problem, pass_):
    def setup(threads):
        x, w, gy = problem.arrays()
        impls = {"convengine": problem.ours(pass_, x, w, gy)}
        impls.update(problem.torch_calls(pass_, x, w, gy))
        if problem.name not in SLOW_FOR_REFERENCE:
            impls["numpy"] = problem.reference(pass_, x, w, gy)
        return impls

    return Case(f"conv/{problem.name}/{pass_}", "conv", problem.flops, setup,
                quick=problem.name in QUICK)


def conv_cases():
    return [_conv_case(p, pass_) for p in conv_problems()
            for pass_ in (PASSES[:1] if p.name in shapes.CONV2D_FORWARD_ONLY else PASSES)]


# ----- pooling ----------------------------------------------------------------------------------

def _pool_calls(kind, kernel, stride, padding):
    """(ours, reference, torch function) for a forward pooling pass."""
    if kind == "max":
        return (lambda x: P.max_pool_forward(x, kernel, stride, padding),
                lambda x: R.max_pool_forward(x, kernel, stride, padding)[0],
                lambda F, x: F.max_pool2d(x, kernel, stride, padding))
    if kind == "avg":
        return (lambda x: P.avg_pool_forward(x, kernel, stride, padding),
                lambda x: R.avg_pool_forward(x, kernel, stride, padding),
                lambda F, x: F.avg_pool2d(x, kernel, stride, padding))
    return (lambda x: P.adaptive_avg_pool_forward(x, kernel),
            lambda x: np.mean(x, axis=(2, 3), keepdims=True),
            lambda F, x: F.adaptive_avg_pool2d(x, kernel))


def _pool_case(name, shape, kind, kernel, stride, padding):
    ours, reference, torch_fn = _pool_calls(kind, kernel, stride, padding)

    def setup(threads):
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        impls = {"convengine": lambda: ours(x), "numpy": lambda: reference(x)}
        torch = torch_or_none()
        if torch is not None:
            tx = torch.from_numpy(x)
            tx_cl = tx.contiguous(memory_format=torch.channels_last)
            F = torch.nn.functional
            impls["torch"] = lambda: torch_fn(F, tx).numpy()
            # No conversion back to NCHW timed (a strided view), as for convolution.
            impls["torch_cl"] = lambda: torch_fn(F, tx_cl).numpy()
        return impls

    return Case(f"pool/{name}/forward", "pool", 0.0, setup, quick=name == "max2x2s2")


def pool_cases():
    return [_pool_case(name, *spec) for name, spec in shapes.POOL.items()]
