"""NumPy-in, NumPy-out kernels for embedding convengine in another framework.

Each function takes C-contiguous float32 ndarrays, validates them, runs the compiled kernel and
returns ndarrays; most accept preallocated outputs (`out=`). No Tensor, no autograd: forward and
each backward pass are separate calls, so a host framework can wire them into its own graph.
One module per op family; everything is re-exported here.
"""

from .conv import (conv_backward_bias, conv_backward_input, conv_backward_weight,  # noqa: E402
                   conv_forward, conv_transpose_backward_input, conv_transpose_backward_weight,
                   conv_transpose_forward)
from . import activation, pool  # noqa: E402
from .activation import (elu, elu_backward, gelu, gelu_backward, leaky_relu,  # noqa: E402
                         leaky_relu_backward, log_softmax, log_softmax_backward, relu,
                         relu_backward, sigmoid, sigmoid_backward, softmax, softmax_backward,
                         tanh, tanh_backward)
from .pool import (adaptive_avg_pool_backward, adaptive_avg_pool_forward,  # noqa: E402
                   adaptive_max_pool_backward, adaptive_max_pool_forward,
                   avg_pool_backward, avg_pool_forward, global_avg_pool_backward,
                   global_avg_pool_forward, max_pool_backward, max_pool_forward,
                   max_unpool_backward, max_unpool_forward, pool_output_shape)
