"""Neural-network building blocks (convengine.nn.functional for now)."""

from . import functional

__all__ = ["functional"]
