"""convengine: a CPU convolution engine with hand-written C++ kernels and a PyTorch-like API.

    import convengine as ce
    x = ce.randn(4, 3, requires_grad=True)
    loss = (x.relu() * 2).sum()
    loss.backward()          # x.grad holds d(loss)/dx

Importing convengine picks the kernel variant for this CPU once (CONVENGINE_ISA=ref|avx2|avx512
forces one).
"""

import numpy as _np

from ._version import __version__
from . import _C
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .creation import (arange, as_tensor, default_generator, full, manual_seed, ones, ones_like,
                       rand, randn, tensor, zeros, zeros_like)
from .functional import (abs, add, argmax, argmin, cat, clamp, clip, concat, div, exp, flatten,
                         log, log_softmax, matmul, max, mean, min, mul, neg, permute, pow, relu,
                         reshape, sigmoid, softmax, sqrt, squeeze, stack, sub, sum, tanh,
                         transpose, unsqueeze, var, where)
from .gradcheck import GradcheckError, gradcheck
from .runtime import apply_isa_from_environment as _apply_isa_from_environment
from .runtime import get_num_threads, info, set_num_threads
from .tensor import Tensor
from .kernels.conv import get_workspace_limit, set_workspace_limit
from . import nn
from . import data, models, optim, training
from . import adversarial, inference, interpret

float16 = _np.dtype("float16")
float32 = _np.dtype("float32")
float64 = _np.dtype("float64")
int32 = _np.dtype("int32")
int64 = _np.dtype("int64")
bool_ = _np.dtype("bool")

_apply_isa_from_environment()
