"""Checkpoints in a safe format: a NumPy .npz (never pickle), written atomically and verified
on load.

A checkpoint holds nested state (model and optimizer state_dicts, scheduler state, epoch,
history): every array is stored as its own .npz entry, the rest of the tree as JSON with
placeholders for the arrays, plus a SHA-256 over every entry's name, dtype, shape and bytes.
Saving writes a temporary file in the target directory, fsyncs it and renames it over the
target, so a crash mid-write leaves the previous checkpoint intact. Loading checks the
checksum, so a truncated or altered file gives a clear error.
"""

import collections
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from ..tensor import Tensor

__all__ = ["save_checkpoint", "load_checkpoint", "save_state_dict", "load_state_dict",
           "CheckpointError", "FORMAT"]

FORMAT = "convengine-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file that is missing, corrupt, altered or of another format."""


def _join(path, key):
    return f"{path}/{key}" if path else str(key)


def _encode(obj, arrays, path):
    """JSON-able tree of obj; arrays moved into `arrays` under their tree path."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "numpy"):
        obj = obj.detach().cpu().numpy()  # a torch tensor
    if isinstance(obj, np.ndarray):
        key = path or "value"
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"save_checkpoint: cannot store array of dtype {obj.dtype} at "
                            f"{key!r}")
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    if isinstance(obj, collections.Counter):
        return {"__counter__": [[_encode(k, arrays, _join(path, f"k{i}")), v]
                                for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and "__array__" not in obj:
            return {k: _encode(v, arrays, _join(path, k)) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, arrays, _join(path, f"key{i}")),
                              _encode(v, arrays, _join(path, k))]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, _join(path, i)) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, _join(path, i)) for i, v in enumerate(obj)]
    raise TypeError(f"save_checkpoint: cannot store a {type(obj).__name__} at {path!r} "
                    f"(arrays, numbers, strings, lists, tuples and dicts only)")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__tuple__" in obj:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        if "__counter__" in obj:
            return collections.Counter({_decode(k, arrays): v for k, v in obj["__counter__"]})
        if "__dict__" in obj:
            return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__dict__"]}
        return {k: _decode(v, arrays) for k, v in obj.items()}
    return obj


def _digest(entries):
    h = hashlib.sha256()
    for name in sorted(entries):
        a = np.ascontiguousarray(entries[name])
        h.update(name.encode())
        h.update(str(a.dtype.str).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path, state):
    """Writes `state` (a dict: arrays, Tensors, numbers, strings, lists, tuples, dicts)
    atomically to path (.npz)."""
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: state must be a dict, got {type(state).__name__}")
    arrays = {}
    tree = _encode(state, arrays, "")
    entries = {f"a:{k}": v for k, v in arrays.items()}
    meta = json.dumps({"format": FORMAT, "tree": tree}).encode()
    entries["__meta__"] = np.frombuffer(meta, dtype=np.uint8)
    entries["__checksum__"] = np.frombuffer(_digest(entries).encode(), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:  # make the rename itself durable
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path):
    """The state dict saved by save_checkpoint, after verifying format and checksum."""
    if not os.path.isfile(path):
        raise CheckpointError(f"load_checkpoint: no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            entries = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise CheckpointError(f"load_checkpoint: {path!r} is corrupt or truncated: "
                              f"{error}") from error
    if "__meta__" not in entries or "__checksum__" not in entries:
        raise CheckpointError(f"load_checkpoint: {path!r} is not a convengine checkpoint")
    expected = entries.pop("__checksum__").tobytes().decode()
    if _digest(entries) != expected:
        raise CheckpointError(f"load_checkpoint: checksum mismatch in {path!r}: the file was "
                              f"altered or damaged")
    meta = json.loads(entries.pop("__meta__").tobytes().decode())
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"load_checkpoint: {path!r} has format {meta.get('format')!r}, "
                              f"expected {FORMAT!r}")
    arrays = {name[2:]: value for name, value in entries.items()}
    return _decode(meta["tree"], arrays)


def save_state_dict(module, path):
    """Saves module.state_dict() (weights only) as a verified checkpoint."""
    return save_checkpoint(path, {"model": {k: v.data for k, v in module.state_dict().items()}})


def load_state_dict(module, path, strict=True):
    """Loads weights saved by save_state_dict (or a Trainer checkpoint) into module; a
    checkpoint of another model gives StateDictError listing the mismatches."""
    state = load_checkpoint(path)
    if "model" not in state:
        raise CheckpointError(f"load_state_dict: {path!r} holds no model weights")
    return module.load_state_dict(state["model"], strict=strict)
