"""Reverse-mode automatic differentiation: the Function base class, grad mode and the graph walk.

A Function's forward runs on raw ndarrays and returns an ndarray; its backward receives the
gradient of the output (an ndarray) and returns one gradient per input, None where an input
needs none. Function.apply wraps that in Tensors and records the graph:

    out = Mul.apply(a, b)         # a, b: Tensors or Python numbers (numbers are constants)
    out._ctx.inputs == (a, b)     # the node remembers its inputs for the backward walk

backward() walks the graph iteratively (no recursion, so a 10,000-op chain is fine), visits each
node once in reverse topological order, and sums the gradients of tensors used more than once.
"""

import functools
import threading

import numpy as np

__all__ = ["Function", "no_grad", "enable_grad", "is_grad_enabled", "run_backward"]


class _GradMode(threading.local):
    """Whether operations record the graph; per thread, as in PyTorch."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled():
    """True when new operations record the graph for backward()."""
    return _grad_mode.enabled


class _SetGradMode:
    """Context manager and decorator (``@no_grad()`` or bare ``@no_grad``) that sets grad mode
    for its body."""

    mode = True

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self if fn is None else self(fn)  # bare decorator: no_grad(fn)

    def __enter__(self):
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __exit__(self, *exc_info):
        _grad_mode.enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_SetGradMode):
    """Operations inside do not record the graph (inference, parameter updates)."""

    mode = False


class enable_grad(_SetGradMode):
    """Operations inside record the graph, even within no_grad."""

    mode = True


class Function:
    """A differentiable operation: forward and backward side by side, on raw arrays.

    Subclasses implement ``forward(self, *arrays, **params) -> ndarray`` and
    ``backward(self, grad_output) -> grad or tuple of grads`` (one per positional input, None
    where ``self.needs_input_grad[i]`` is False or the input is a constant). forward saves what
    backward needs as attributes, and only when some input needs a gradient.
    """

    def __init__(self, *inputs):
        from .tensor import Tensor

        self.inputs = inputs
        recording = is_grad_enabled()
        self.needs_input_grad = tuple(
            recording and isinstance(x, Tensor) and x.requires_grad for x in inputs
        )
        self.released = False

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Runs forward on the inputs' arrays; records the node when a gradient is needed."""
        from .tensor import Tensor

        ctx = cls(*inputs)
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        out = ctx.forward(*arrays, **params)
        if any(ctx.needs_input_grad):
            return Tensor._from_function(out, ctx)
        return Tensor._from_function(out, None)

    def release(self):
        """Drops what backward needed, and the inputs, once the graph has been walked.

        Dropping the inputs frees the intermediate tensors of a walked graph even while its
        output is still referenced (as PyTorch frees its graph after backward).
        """
        keep = {"needs_input_grad", "released"}
        for attr in [a for a in vars(self) if a not in keep]:
            delattr(self, attr)
        self.inputs = ()
        self.released = True


def _topological_order(root):
    """Tensors reachable from root through inputs that need gradients, inputs first."""
    from .tensor import Tensor

    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for x in node._ctx.inputs:
                if isinstance(x, Tensor) and x.requires_grad and id(x) not in visited:
                    stack.append((x, False))
    return order


def _as_tuple(grads, n):
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != n:
        raise RuntimeError(f"backward returned {len(grads)} gradients for {n} inputs")
    return grads


def run_backward(root, gradient=None, retain_graph=False):
    """Accumulates d(root)/d(leaf) into every leaf's ``.grad``; see Tensor.backward."""
    from .tensor import Tensor

    if not root.requires_grad:
        raise RuntimeError(
            "backward: the tensor does not require grad and has no graph; "
            "create its inputs with requires_grad=True"
        )
    if gradient is None:
        if root.data.size != 1:
            raise ValueError(
                f"backward: a gradient can be created implicitly only for a scalar output, "
                f"but the output has shape {root.shape}; pass gradient= of that shape"
            )
        gradient = np.ones_like(root.data)
    else:
        gradient = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
        if gradient.shape != root.shape:
            raise ValueError(
                f"backward: gradient has shape {gradient.shape}, expected the output's "
                f"shape {root.shape}"
            )
        gradient = gradient.astype(root.dtype, copy=False)

    grads = {id(root): gradient}
    for node in reversed(_topological_order(root)):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        ctx = node._ctx
        if ctx is None:
            node._accumulate_grad(grad)
            continue
        if ctx.released:
            raise RuntimeError(
                f"backward: the graph through {ctx.name} was already freed by an earlier "
                f"backward(); pass retain_graph=True to walk it twice"
            )
        input_grads = _as_tuple(ctx.backward(grad), len(ctx.inputs))
        for x, g in zip(ctx.inputs, input_grads):
            if g is None or not isinstance(x, Tensor) or not x.requires_grad:
                continue
            g = np.asarray(g, dtype=x.dtype)
            if g.shape != x.shape:
                raise RuntimeError(
                    f"{ctx.name}.backward returned a gradient of shape {g.shape} for an input "
                    f"of shape {x.shape}"
                )
            previous = grads.get(id(x))
            grads[id(x)] = g if previous is None else previous + g
        if not retain_graph:
            ctx.release()
