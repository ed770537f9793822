"""Datasets, splits and the DataLoader: batching, collation, seeded shuffling, drop_last,
prefetching (same batches with and without it, errors surface), stratified and k-fold splits."""

import threading
import time

import numpy as np
import pytest

import convengine as ce
from convengine import data
from convengine.data import transforms as T


def _dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n) % 2
    return data.TensorDataset(x, y)


def test_tensor_dataset_and_default_collate():
    ds = _dataset()
    x, y = ds[3]
    assert isinstance(x, ce.Tensor) and x.shape == (3,) and int(y.item()) == 1
    loader = data.DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert batches[0][0].shape == (4, 3) and batches[-1][0].shape == (2, 3)
    assert batches[0][1].dtype == np.int64
    with pytest.raises(ValueError, match="size mismatch"):
        data.TensorDataset(np.zeros((3, 2)), np.zeros(4))
    collated = data.default_collate([{"a": np.ones(2), "b": 1, "c": 0.5, "s": "x"}] * 3)
    assert collated["a"].shape == (3, 2) and collated["b"].dtype == np.int64
    assert collated["c"].dtype == np.float64 and collated["s"] == ["x"] * 3


def test_drop_last_and_bad_arguments():
    loader = data.DataLoader(_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and len(list(loader)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="prefetch"):
        data.DataLoader(_dataset(), prefetch=-1)
    with pytest.raises(ValueError, match="num_workers"):
        data.DataLoader(_dataset(), num_workers=-1)
    with pytest.raises(TypeError, match="dataset"):
        data.DataLoader(5)
    with pytest.raises(ValueError, match="mutually exclusive"):
        data.DataLoader(_dataset(), sampler=[0, 1], shuffle=True)


def _epoch(loader):
    return [tuple(t.data.copy() for t in b) for b in loader]


def test_seeded_shuffle_is_deterministic_and_differs_between_epochs():
    ds = _dataset(20)
    a = data.DataLoader(ds, batch_size=5, shuffle=True, generator=7)
    b = data.DataLoader(ds, batch_size=5, shuffle=True, generator=7)
    ea1, ea2 = _epoch(a), _epoch(a)
    eb1 = _epoch(b)
    for x, y in zip(ea1, eb1):
        np.testing.assert_array_equal(x[0], y[0])
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(ea1, ea2))
    seen = np.sort(np.concatenate([x[0][:, 0] for x in ea1]))
    np.testing.assert_array_equal(seen, np.arange(20) * 3)  # each sample once
    ce.manual_seed(3)
    c1 = _epoch(data.DataLoader(ds, batch_size=5, shuffle=True))
    ce.manual_seed(3)
    c2 = _epoch(data.DataLoader(ds, batch_size=5, shuffle=True))
    for x, y in zip(c1, c2):
        np.testing.assert_array_equal(x[0], y[0])


def test_augmentation_is_reproducible_with_and_without_prefetch():
    ds = data.datasets.PhantomDataset(12, size=16, task="segmentation", seed=1,
                                      transform=T.Compose([T.RandomAffine(30, p=0.7),
                                                           T.GaussianNoise(0.1, p=1.0)]))
    runs = []
    for prefetch in (0, 2, 2):
        loader = data.DataLoader(ds, batch_size=4, shuffle=True, generator=11,
                                 prefetch=prefetch)
        # something else drawing from the default generator meanwhile must not matter
        ce.randn(3)
        runs.append(_epoch(loader))
    for other in runs[1:]:
        for x, y in zip(runs[0], other):
            np.testing.assert_array_equal(x[0], y[0])
            np.testing.assert_array_equal(x[1], y[1])


def test_prefetch_runs_ahead_in_a_thread_and_propagates_errors():
    built = []

    class Slow(data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            built.append((i, threading.current_thread().name))
            if i == 5:
                raise KeyError("broken sample 5")
            return np.float32(i)

    loader = data.DataLoader(Slow(), batch_size=2, prefetch=2)
    it = iter(loader)
    first = next(it)
    time.sleep(0.2)
    assert len(built) >= 4  # the next batch was built before it was asked for
    assert all(name == "convengine-prefetch" for _, name in built)
    assert first.shape == (2,)
    next(it)
    with pytest.raises(KeyError, match="broken sample 5"):
        next(it)
    # breaking early leaves no thread spinning
    it = iter(data.DataLoader(_dataset(40), batch_size=1, prefetch=2))
    next(it)
    it.close()


def test_random_split_fractions_and_errors():
    ds = _dataset(10)
    a, b = data.random_split(ds, [0.7, 0.3], generator=1)
    assert len(a) == 7 and len(b) == 3
    assert not set(a.indices) & set(b.indices)
    a2, _ = data.random_split(ds, [7, 3], generator=1)
    assert a2.indices == a.indices
    with pytest.raises(ValueError, match="sum of input lengths"):
        data.random_split(ds, [5, 6])
    assert len(data.ConcatDataset([a, b])) == 10 and len(a + b) == 10


def test_stratified_split_keeps_class_proportions():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    ds = data.TensorDataset(np.arange(100, dtype=np.float32), labels)
    train, val, test = data.stratified_split(ds, (0.7, 0.15, 0.15), labels=labels, generator=0)
    assert len(train) + len(val) + len(test) == 100
    assert not (set(train.indices) & set(val.indices)) and not (
        set(val.indices) & set(test.indices))
    for part, frac in ((train, 0.7), (val, 0.15), (test, 0.15)):
        counts = np.bincount(labels[part.indices], minlength=3)
        np.testing.assert_allclose(counts, np.array([60, 30, 10]) * frac, atol=1)
    # labels found on the dataset itself
    phantom = data.datasets.PhantomDataset(40, size=8)
    tr, va = data.stratified_split(phantom, (0.5, 0.5), generator=0)
    assert abs(phantom.labels[tr.indices].mean() - phantom.labels[va.indices].mean()) < 0.1
    with pytest.raises(ValueError, match="sum to 1"):
        data.stratified_split(ds, (0.5, 0.4), labels=labels)


def test_k_fold_covers_every_sample_once():
    labels = np.array([0] * 12 + [1] * 8)
    ds = data.TensorDataset(np.arange(20, dtype=np.float32), labels)
    folds = data.k_fold(ds, k=4, labels=labels, generator=0)
    val_all = np.concatenate([v.indices for _, v in folds])
    np.testing.assert_array_equal(np.sort(val_all), np.arange(20))
    for train, val in folds:
        assert not set(train.indices) & set(val.indices)
        assert len(train) + len(val) == 20
        assert np.bincount(labels[val.indices]).tolist() == [3, 2]  # stratified
    plain = data.k_fold(ds, k=5, shuffle=False)
    assert plain[0][1].indices == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="k must be"):
        data.k_fold(ds, k=1)


def test_transformed_dataset_joint_and_image_only():
    ds = data.datasets.PhantomDataset(4, size=16, task="segmentation")
    flip = T.RandomFlip(axes=[1], p_axis=1.0)
    joint = data.TransformedDataset(ds, flip, joint=True)
    x, m = joint[0]
    x0, m0 = ds[0]
    np.testing.assert_array_equal(x, x0[..., ::-1])
    np.testing.assert_array_equal(m, m0[..., ::-1])
    only = data.TransformedDataset(ds, flip)
    x, m = only[0]
    np.testing.assert_array_equal(m, m0)
