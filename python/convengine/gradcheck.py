"""gradcheck: compares backward() with float64 central differences."""

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """The analytical and numerical Jacobians differ."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    outputs = _as_tuple(fn(*inputs))
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: output {i} of fn is a {type(out).__name__}, not a Tensor")
    return outputs


def _numerical_jacobians(fn, inputs, checked, eps):
    """J[out][in] of shape (out.size, in.size) by central differences on each input element."""
    with no_grad():
        sizes = [o.data.size for o in _outputs(fn, inputs)]
        jacobians = [[np.zeros((n, inputs[i].data.size)) for i in checked] for n in sizes]
        for col, i in enumerate(checked):
            data = inputs[i].data  # perturbed in place, one element at a time (any strides)
            for k in range(data.size):
                where = np.unravel_index(k, data.shape)
                original = data[where]
                data[where] = original + eps
                plus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
                data[where] = original - eps
                minus = [o.data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
                data[where] = original
                for out_index, (p, m) in enumerate(zip(plus, minus)):
                    jacobians[out_index][col][:, k] = (p - m) / (2 * eps)
    return jacobians


def _analytical_jacobians(fn, inputs, checked):
    """J[out][in] by one backward() per output element (a row of the Jacobian each)."""
    outputs = _outputs(fn, inputs)
    jacobians = [[np.zeros((o.data.size, inputs[i].data.size)) for i in checked] for o in outputs]
    for out_index, out in enumerate(outputs):
        if not out.requires_grad:
            continue  # no input reaches it: its Jacobian rows stay zero
        for row in range(out.data.size):
            for i in checked:
                inputs[i].grad = None
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.reshape(-1)[row] = 1
            out.backward(seed, retain_graph=True)
            for col, i in enumerate(checked):
                if inputs[i].grad is not None:
                    jacobians[out_index][col][row] = inputs[i].grad.data.reshape(-1)
    return jacobians


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Checks fn's gradients against central differences, for every input with requires_grad.

    fn: takes the inputs, returns a Tensor or a tuple of Tensors.
    inputs: a Tensor or a sequence of Tensors (and other arguments passed through).
    Inputs that require grad must be float64: float32 differences are too coarse to judge.
    Returns True, or raises GradcheckError (returns False when raise_exception=False).
    """
    inputs = _as_tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {inputs[i].dtype}; inputs that require grad "
                f"must be float64"
            )
    saved_grads = [inputs[i].grad for i in checked]
    try:
        analytical = _analytical_jacobians(fn, inputs, checked)
        numerical = _numerical_jacobians(fn, inputs, checked, eps)
    finally:
        for i, grad in zip(checked, saved_grads):
            inputs[i].grad = grad
    for out_index, (a_row, n_row) in enumerate(zip(analytical, numerical)):
        for col, (a, n) in enumerate(zip(a_row, n_row)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                where = np.unravel_index(np.argmax(np.abs(a - n)), a.shape)
                message = (
                    f"gradcheck: Jacobian of output {out_index} with respect to input "
                    f"{checked[col]} differs: max |analytical - numerical| = "
                    f"{np.max(np.abs(a - n)):.3g} at (output element, input element) = "
                    f"{tuple(int(w) for w in where)}\nanalytical:\n{a}\nnumerical:\n{n}"
                )
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True
