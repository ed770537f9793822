"""Shape operations: reshape, permute, indexing, gather along a dim, cat, stack, pad."""

import numpy as np

from ..autograd import Function

# ----- argument parsing (shared by Tensor methods and functional wrappers) --------------------


def _dims_tuple(args):
    """Accepts f(2, 3) and f((2, 3)) alike, as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return tuple(args)


def parse_shape(args, old_shape):
    """reshape's target shape, with at most one -1 inferred."""
    new_shape = _dims_tuple(args)
    if not all(isinstance(n, (int, np.integer)) for n in new_shape):
        raise TypeError(f"reshape: shape must be ints, got {new_shape}")
    size = int(np.prod(old_shape))
    if new_shape.count(-1) > 1 or any(n < -1 for n in new_shape):
        raise ValueError(f"reshape: invalid shape {new_shape}")
    known = int(np.prod([n for n in new_shape if n != -1]))
    if -1 in new_shape:
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape {old_shape} (size {size}) to {new_shape}")
        new_shape = tuple(size // known if n == -1 else n for n in new_shape)
    elif known != size:
        raise ValueError(f"reshape: cannot reshape {old_shape} (size {size}) to {new_shape}")
    return tuple(int(n) for n in new_shape)


def _normalize_dim(dim, ndim, op):
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{op}: dim {dim} is out of range for {ndim} dimensions")
    return int(dim) % ndim


def parse_permutation(args, ndim):
    dims = _dims_tuple(args)
    normalized = tuple(_normalize_dim(d, max(ndim, 1), "permute") for d in dims)
    if sorted(normalized) != list(range(ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of {ndim} dimensions")
    return normalized


def swap_permutation(ndim, dim0, dim0_or_1):
    dims = list(range(ndim))
    i = _normalize_dim(dim0, ndim, "transpose")
    j = _normalize_dim(dim0_or_1, ndim, "transpose")
    dims[i], dims[j] = dims[j], dims[i]
    return tuple(dims)


def flattened_shape(shape, start_dim, end_dim):
    if len(shape) == 0:
        return (1,)
    start = _normalize_dim(start_dim, len(shape), "flatten")
    end = _normalize_dim(end_dim, len(shape), "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(shape[start:end + 1]))
    return tuple(shape[:start]) + (merged,) + tuple(shape[end + 1:])


def squeezed_shape(shape, dim):
    if dim is None:
        return tuple(n for n in shape if n != 1)
    if len(shape) == 0:
        return ()
    dims = {_normalize_dim(d, len(shape), "squeeze")
            for d in ((dim,) if isinstance(dim, (int, np.integer)) else dim)}
    return tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))


def unsqueezed_shape(shape, dim):
    d = _normalize_dim(dim, len(shape) + 1, "unsqueeze")
    return tuple(shape[:d]) + (1,) + tuple(shape[d:])


def normalize_index(index):
    """Replaces Tensors inside an index by their arrays."""
    from ..tensor import Tensor

    def plain(i):
        return i.data if isinstance(i, Tensor) else i

    return tuple(plain(i) for i in index) if isinstance(index, tuple) else plain(index)


def split_integer_index(index):
    """PyTorch applies integer indices before advanced (array, list, mask) ones; NumPy mixes
    them, which moves the result's dimensions when a slice separates them (x[0, :, [1, 2]] is
    (2, n) in NumPy but (n, 2) in PyTorch). Returns (integer part, the rest) to apply one after
    the other, or None when the index has no such mix.
    """
    if not isinstance(index, tuple):
        return None
    is_int = [isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in index]
    if not any(is_int) or _is_basic_index(index):
        return None
    first = []
    for i, integer in zip(index, is_int):
        if integer or i is Ellipsis:
            first.append(i)
        elif i is not None:  # keep the dimensions this item indexes (all of a mask's)
            mask = not isinstance(i, slice) and np.asarray(i).dtype == np.bool_
            first.extend([slice(None)] * (np.ndim(i) if mask else 1))
    rest = tuple(i for i, integer in zip(index, is_int) if not integer)
    return tuple(first), rest


def _is_basic_index(index):
    """True for ints, slices, None and Ellipsis only: such an index never repeats an element."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in parts)


# ----- Functions -------------------------------------------------------------------------------


class Reshape(Function):
    def forward(self, x, new_shape):
        self.shape = x.shape
        return np.reshape(x, new_shape)

    def backward(self, grad):
        return np.reshape(grad, self.shape)


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(np.argsort(dims))
        return np.transpose(x, dims)

    def backward(self, grad):
        return np.transpose(grad, self.inverse)


class GetItem(Function):
    """x[index] with NumPy indexing; repeated advanced indices accumulate their gradients."""

    def forward(self, x, index):
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor shape {x.shape})") from None

    def backward(self, grad):
        out = np.zeros(self.shape, dtype=self.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad
        else:
            np.add.at(out, self.index, grad)
        return out


class TakeAlongDim(Function):
    """Gathers x along dim at the given indices (the values of max/min with dim)."""

    def forward(self, x, indices, dim):
        self.shape, self.dtype, self.indices, self.dim = x.shape, x.dtype, indices, dim
        return np.take_along_axis(x, indices, axis=dim)

    def backward(self, grad):
        out = np.zeros(self.shape, dtype=self.dtype)
        np.put_along_axis(out, self.indices, grad, axis=self.dim)
        return out


class Cat(Function):
    """Concatenation of any number of tensors along an existing dimension."""

    def forward(self, *arrays, dim=0):
        if not arrays:
            raise ValueError("cat: expected a non-empty sequence of tensors")
        ndim = np.ndim(arrays[0])
        if ndim == 0:
            raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
        dim = _normalize_dim(dim, ndim, "cat")
        for i, a in enumerate(arrays):
            same_rest = np.ndim(a) == ndim and all(
                np.shape(a)[d] == np.shape(arrays[0])[d] for d in range(ndim) if d != dim)
            if not same_rest:
                raise ValueError(
                    f"cat: tensor {i} has shape {np.shape(a)}, which does not match "
                    f"{np.shape(arrays[0])} outside dimension {dim}"
                )
        self.dim = dim
        self.sizes = [np.shape(a)[dim] for a in arrays]
        return np.concatenate(arrays, axis=dim)

    def backward(self, grad):
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(np.split(grad, bounds, axis=self.dim))


class Stack(Function):
    """Stacking of equal-shaped tensors along a new dimension."""

    def forward(self, *arrays, dim=0):
        if not arrays:
            raise ValueError("stack: expected a non-empty sequence of tensors")
        for i, a in enumerate(arrays):
            if np.shape(a) != np.shape(arrays[0]):
                raise ValueError(
                    f"stack: tensor {i} has shape {np.shape(a)}, expected {np.shape(arrays[0])}"
                )
        self.dim = _normalize_dim(dim, np.ndim(arrays[0]) + 1, "stack")
        return np.stack(arrays, axis=self.dim)

    def backward(self, grad):
        return tuple(np.moveaxis(grad, self.dim, 0))


def _pad_source_index(n, before, after, mode):
    """For each output position along one dim, the input position it copies (-1: constant)."""
    positions = np.arange(-before, n + after)
    if mode == "constant":
        return np.where((positions >= 0) & (positions < n), positions, -1)
    if mode == "reflect":  # mirror without repeating the edge: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        period = 2 * (n - 1) if n > 1 else 1
        folded = np.mod(positions, period)
        return np.where(folded < n, folded, period - folded)
    if mode == "replicate":
        return np.clip(positions, 0, n - 1)
    return np.mod(positions, n)  # circular


def parse_pad(pad, shape, mode):
    """PyTorch's pad tuple (last dim first: left, right, top, bottom, ...) to per-dim pairs."""
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > len(shape):
        raise ValueError(
            f"pad: expected an even number of values, at most 2 per dimension of a "
            f"{len(shape)}-d tensor, got {pad}"
        )
    if any(not isinstance(p, (int, np.integer)) or p < 0 for p in pad):
        raise ValueError(f"pad: padding must be non-negative ints, got {pad}")
    pairs = [(0, 0)] * len(shape)
    for i in range(len(pad) // 2):
        dim = len(shape) - 1 - i
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        n = shape[dim]
        if (before or after) and mode != "constant":
            limit = n - 1 if mode == "reflect" else n
            if n == 0 or (mode != "replicate" and max(before, after) > limit):
                raise ValueError(
                    f"pad: {mode} padding of ({before}, {after}) on dimension {dim} of size "
                    f"{n} must be at most {limit}"
                )
        pairs[dim] = (before, after)
    return pairs


class Pad(Function):
    """Pads each dimension by (before, after) with a constant or by reflect/replicate/circular.

    Every mode is one gather per padded dimension (out = x.take(source, axis)), so backward is
    the matching scatter-add: each output position sends its gradient to the input position it
    was copied from, and constant padding sends nothing.
    """

    def forward(self, x, pairs, mode="constant", value=0.0):
        self.pairs, self.mode = pairs, mode
        if mode == "constant":
            return np.pad(x, pairs, mode="constant", constant_values=value)
        out = x
        for dim, (before, after) in enumerate(pairs):
            if before or after:
                out = np.take(out, _pad_source_index(out.shape[dim], before, after, mode), axis=dim)
        return out

    def backward(self, grad):
        for dim in reversed(range(grad.ndim)):
            before, after = self.pairs[dim]
            if not (before or after):
                continue
            n = grad.shape[dim] - before - after
            source = _pad_source_index(n, before, after, self.mode)
            kept = source >= 0
            shape = list(grad.shape)
            shape[dim] = n
            reduced = np.zeros(shape, dtype=grad.dtype)
            index = (slice(None),) * dim + (source[kept],)
            np.add.at(reduced, index, np.compress(kept, grad, axis=dim))
            grad = reduced
        return grad
