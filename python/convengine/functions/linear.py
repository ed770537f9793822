"""linear: y = x @ W^T + b, the fully connected layer's operation, from Tensor matmul."""

import numpy as np

from ..creation import as_tensor

__all__ = ["linear"]


def linear(input, weight, bias=None):
    """input (*, in_features) @ weight (out_features, in_features)^T + bias (out_features,)."""
    input, weight = as_tensor(input), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input's last dimension must be in_features="
                         f"{weight.shape[1]}, got input of shape {input.shape}")
    if bias is not None and np.shape(as_tensor(bias).data) != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got "
                         f"{np.shape(as_tensor(bias).data)}")
    # (*, out) = (*, in) @ (in, out)
    out = input @ weight.T
    return out + bias if bias is not None else out
