"""Argument checks shared by the model constructors (errors name the model and the argument)."""

import numbers


def positive_int(value, name, op):
    """value as an int >= 1: TypeError for a non-int (bool included), ValueError for <= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{op}: {name} must be positive, got {value}")
    return int(value)
