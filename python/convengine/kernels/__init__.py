"""NumPy-in, NumPy-out kernels for embedding convengine in another framework.

Each function takes C-contiguous float32 ndarrays, validates them, runs the compiled kernel and
returns ndarrays; most accept preallocated outputs (`out=`). No Tensor, no autograd: forward and
each backward pass are separate calls, so a host framework can wire them into its own graph.
One module per op family; everything is re-exported here.
"""

from .conv import (conv_backward_bias, conv_backward_input, conv_backward_weight,  # noqa: E402
                   conv_forward, conv_transpose_backward_input, conv_transpose_backward_weight,
                   conv_transpose_forward)
