"""Neural-network building blocks, as torch.nn: layers (Module and its subclasses), Parameter,
losses, weight initialisation (nn.init) and the functional forms (nn.functional)."""

from . import functional
from . import init
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["functional", "init", "Parameter"] + list(_modules_all)
