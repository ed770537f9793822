"""PyTorch's torch.nn.functional counterpart: the functional operations convengine has."""

from ..functional import pad, relu

__all__ = ["pad", "relu"]
