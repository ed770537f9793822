"""Parameter: a Tensor that a Module registers as one of its learnable weights."""

import numpy as np

from ..tensor import Tensor

__all__ = ["Parameter", "is_parameter"]


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that Module.__setattr__ registers.

    Parameter(data) shares data's array (as torch.nn.Parameter shares storage); data may be a
    Tensor, an ndarray or anything numpy.asarray accepts. Parameter() is an empty float32 one.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data
        array = np.asarray(data)
        if array.dtype.kind != "f" and requires_grad:
            raise TypeError(
                f"Parameter: only floating-point data can require gradients, got dtype "
                f"{array.dtype}"
            )
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def is_parameter(value):
    return isinstance(value, Parameter)
