"""Optimizer: the base class of the gradient-descent rules, with PyTorch's parameter groups
and state_dict layout.

Updates run in place on each Parameter's array under no_grad; for float32 contiguous arrays
the "y += alpha * x" steps go through the compiled _C.axpy kernel.
"""

import collections
import copy
import numbers

import numpy as np

from .. import _C
from ..tensor import Tensor

__all__ = ["Optimizer", "required", "axpy"]


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _f32_contiguous(a):
    return a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable


def axpy(alpha, x, y):
    """y += alpha * x in place (the compiled kernel for float32 contiguous arrays)."""
    if _f32_contiguous(y) and x.dtype == np.float32 and x.flags.c_contiguous \
            and x.shape == y.shape:
        _C.axpy(float(alpha), x, y)
    else:
        y += alpha * x
    return y


def _plain(value):
    """A state value as a plain Python/NumPy object (torch tensors converted)."""
    if isinstance(value, Tensor):
        return value.data.copy()
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        array = value.detach().cpu().numpy()
        return array.item() if array.ndim == 0 else array.copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


class Optimizer:
    """Holds param_groups (dicts with "params" plus the hyper-parameters) and per-parameter
    state; subclasses implement step()."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group):
        """Adds a group of parameters with its own hyper-parameters (others from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs; "
                            "use a list instead")
        else:
            params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
            if p.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point Tensors, got "
                                f"dtype {p.dtype}")
        group = dict(param_group, params=params)
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        if existing & {id(p) for p in params}:
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clears every parameter's gradient (to None by default, as in PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        raise NotImplementedError

    def _closure_loss(self, closure):
        if closure is None:
            return None
        from ..autograd import enable_grad

        with enable_grad():
            return closure()

    # ----- state_dict ----------------------------------------------------------------------
    def state_dict(self):
        """{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}, with
        parameters numbered in group order, as PyTorch does."""
        index, start = {}, 0
        groups = []
        for group in self.param_groups:
            ids = list(range(start, start + len(group["params"])))
            index.update({id(p): i for p, i in zip(group["params"], ids)})
            start += len(ids)
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restores hyper-parameters and per-parameter state (copied, cast to each parameter's
        dtype); the group layout must match this optimizer's."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, the "
                             f"optimizer has {len(self.param_groups)}")
        for i, (ours, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(ours["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group {i} of "
                                 f"{len(saved['params'])} parameters that doesn't match the "
                                 f"size of the optimizer's group ({len(ours['params'])})")
        id_map = {}
        for ours, saved in zip(self.param_groups, saved_groups):
            id_map.update(zip(saved["params"], ours["params"]))
        self.state = collections.defaultdict(dict)
        for key, value in state_dict.get("state", {}).items():
            key = int(key)
            if key not in id_map:
                continue
            param = id_map[key]
            entry = {}
            for name, v in value.items():
                v = _plain(v)
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.shape == param.shape:
                    v = v.astype(param.dtype)
                entry[name] = v
            self.state[param] = entry
        for ours, saved in zip(self.param_groups, saved_groups):
            for k, v in saved.items():
                if k != "params":
                    ours[k] = _plain(v)


def check_hyper(name, value, low=0.0, high=None, owner="optimizer"):
    """ValueError naming the argument unless low <= value (<= high)."""
    if not isinstance(value, numbers.Real) or value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{owner}: invalid {name} value {value!r}, expected {bound}")
