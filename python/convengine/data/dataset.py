"""Datasets and splits: Dataset, TensorDataset, Subset, ConcatDataset, random_split,
stratified_split (train/val/test with the class proportions kept) and k_fold."""

import bisect
import math
import numbers

import numpy as np

from ..creation import default_generator
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "TransformedDataset",
           "random_split", "stratified_split", "k_fold", "get_labels"]


class Dataset:
    """An indexable collection of samples: implement __getitem__ and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the i-th rows of equally long tensors or arrays, as a tuple."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: at least one tensor is required")
        arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        n = len(arrays[0])
        for i, a in enumerate(arrays):
            if a.ndim == 0 or len(a) != n:
                raise ValueError(f"TensorDataset: size mismatch between tensors: tensor 0 has "
                                 f"{n} rows, tensor {i} has shape {a.shape}")
        self.tensors = tuple(Tensor(a) for a in arrays)
        self._arrays = arrays

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self._arrays)

    def __len__(self):
        return len(self._arrays[0])


class Subset(Dataset):
    """The samples of `dataset` at `indices`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The datasets one after another."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self):
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index):
        if index < 0:
            if -index > len(self):
                raise IndexError("ConcatDataset: index out of range")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][index - start]


def _rng(generator):
    if generator is None:
        return default_generator()
    if isinstance(generator, numbers.Integral):
        return np.random.default_rng(int(generator))
    return generator


def _lengths(lengths, n, op):
    """Absolute lengths from ints (summing to n) or fractions (summing to 1)."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError(f"{op}: lengths must not be empty")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(
            isinstance(x, numbers.Integral) for x in lengths):
        if any(x < 0 or x > 1 for x in lengths):
            raise ValueError(f"{op}: fractions must lie in [0, 1], got {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # round-robin the remainder, as PyTorch does
            counts[i % len(counts)] += 1
        return counts
    if not all(isinstance(x, numbers.Integral) and x >= 0 for x in lengths):
        raise ValueError(f"{op}: lengths must be non-negative ints or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"{op}: sum of input lengths ({sum(lengths)}) does not equal the "
                         f"length of the input dataset ({n})")
    return [int(x) for x in lengths]


def random_split(dataset, lengths, generator=None):
    """Splits into non-overlapping random Subsets of the given lengths (ints or fractions).

    generator: a numpy Generator, an int seed, or None for convengine's default generator.
    """
    n = len(dataset)
    counts = _lengths(lengths, n, "random_split")
    order = _rng(generator).permutation(n)
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, order[start:start + count]))
        start += count
    return subsets


def get_labels(dataset):
    """Class labels of every sample: dataset.labels / .targets when present, else the second
    element of each sample."""
    for name in ("labels", "targets"):
        if hasattr(dataset, name):
            labels = getattr(dataset, name)
            return np.asarray(labels.data if isinstance(labels, Tensor) else labels).reshape(
                len(dataset), -1)[:, 0]
    if isinstance(dataset, Subset):
        return get_labels(dataset.dataset)[dataset.indices]
    out = []
    for i in range(len(dataset)):
        label = dataset[i][1]
        out.append(np.asarray(label.data if isinstance(label, Tensor) else label).reshape(-1)[0])
    return np.asarray(out)


def _stratified_indices(labels, counts_fractions, rng):
    """Per class: shuffle its indices and deal them out by the fractions (largest remainder),
    so every split keeps the class proportions."""
    fractions = np.asarray(counts_fractions, dtype=np.float64)
    splits = [[] for _ in fractions]
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        exact = fractions * len(members)
        counts = np.floor(exact).astype(int)
        remainder = len(members) - counts.sum()
        for i in np.argsort(-(exact - counts), kind="stable")[:remainder]:
            counts[i] += 1
        start = 0
        for s, count in zip(splits, counts):
            s.extend(members[start:start + count])
            start += count
    return [rng.permutation(np.asarray(s, dtype=np.int64)) for s in splits]


def stratified_split(dataset, fractions=(0.7, 0.15, 0.15), labels=None, generator=None):
    """Splits into Subsets (e.g. train / val / test) that each keep the class proportions.

    fractions: one per split, summing to 1. labels: per-sample class labels (default:
    get_labels(dataset)).
    """
    fractions = list(fractions)
    if not fractions or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1):
        raise ValueError(f"stratified_split: fractions must be non-negative and sum to 1, got "
                         f"{fractions}")
    labels = get_labels(dataset) if labels is None else np.asarray(labels).reshape(-1)
    if len(labels) != len(dataset):
        raise ValueError(f"stratified_split: {len(labels)} labels for {len(dataset)} samples")
    parts = _stratified_indices(labels, fractions, _rng(generator))
    return [Subset(dataset, p) for p in parts]


def k_fold(dataset, k=5, labels=None, stratified=None, shuffle=True, generator=None):
    """k (train, validation) Subset pairs; each sample is in exactly one validation fold.

    stratified (default: True when labels are given or found): folds keep class proportions.
    """
    n = len(dataset)
    if not isinstance(k, numbers.Integral) or k < 2 or k > n:
        raise ValueError(f"k_fold: k must be an int in [2, {n}], got {k!r}")
    rng = _rng(generator)
    if stratified is None:
        stratified = labels is not None
    if stratified:
        labels = get_labels(dataset) if labels is None else np.asarray(labels).reshape(-1)
        folds = [[] for _ in range(k)]
        offset = 0
        for cls in np.unique(labels):
            members = np.flatnonzero(labels == cls)
            if shuffle:
                members = rng.permutation(members)
            for j, idx in enumerate(members):  # deal round-robin, continuing across classes
                folds[(offset + j) % k].append(idx)
            offset += len(members)
        folds = [np.sort(np.asarray(f, dtype=np.int64)) for f in folds]
    else:
        order = rng.permutation(n) if shuffle else np.arange(n)
        folds = np.array_split(order, k)
    pairs = []
    for i in range(k):
        val = np.asarray(folds[i])
        train = np.concatenate([folds[j] for j in range(k) if j != i])
        pairs.append((Subset(dataset, train), Subset(dataset, val)))
    return pairs


class TransformedDataset(Dataset):
    """Applies a transform to the samples of another dataset (e.g. augmentation on the
    training Subset only).

    joint=False: transform(sample[0]) (the image). joint=True: transform(sample[0],
    sample[1]) for (image, mask) pairs. target_transform applies to sample[1].
    """

    def __init__(self, dataset, transform=None, target_transform=None, joint=False):
        self.dataset, self.transform = dataset, transform
        self.target_transform, self.joint = target_transform, joint

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        sample = self.dataset[index]
        x, y, rest = sample[0], sample[1], tuple(sample[2:])
        if self.transform is not None:
            if self.joint:
                x, y = self.transform(x, y)
            else:
                x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return (x, y) + rest

    def __getattr__(self, name):
        if name in ("labels", "targets"):
            return getattr(self.dataset, name)
        raise AttributeError(name)
