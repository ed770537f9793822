"""DataLoader: batches (optionally shuffled with a seeded generator) collated into Tensors,
built ahead of time by a background thread so that the next batch is ready while the engine
computes (the kernels and the augmentation loops release the GIL)."""

import collections
import numbers
import queue
import threading

import numpy as np

from ..creation import default_generator
from ..tensor import Tensor
from . import _random

__all__ = ["DataLoader", "default_collate"]


def default_collate(batch):
    """Stacks a list of samples: arrays/Tensors -> one Tensor with a batch dim, ints -> int64,
    floats -> float64 (as PyTorch), tuples/lists/dicts element by element, strings -> lists."""
    first = batch[0]
    if isinstance(first, Tensor):
        return Tensor(np.stack([b.data for b in batch]))
    if isinstance(first, np.ndarray):
        if first.dtype.kind in "OSU":
            return list(batch)
        return Tensor(np.stack(batch))
    if isinstance(first, (bool, np.bool_)):
        return Tensor(np.asarray(batch, dtype=np.bool_))
    if isinstance(first, numbers.Integral):
        return Tensor(np.asarray(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return Tensor(np.asarray(batch, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([b[key] for b in batch]) for key in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # namedtuple
        return type(first)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise ValueError("default_collate: each sample in the batch should have the same "
                             "number of elements")
        return [default_collate(list(s)) for s in zip(*batch)] if isinstance(first, list) \
            else tuple(default_collate(list(s)) for s in zip(*batch))
    raise TypeError(f"default_collate: samples must contain Tensors, arrays, numbers, dicts or "
                    f"sequences; found {type(first).__name__}")


_END = object()


class _Failure:
    def __init__(self, error):
        self.error = error


class _PrefetchIterator:
    """Builds batches in a daemon thread, at most `depth` ahead of the consumer."""

    def __init__(self, make_batch, batches, depth):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(make_batch, batches),
                                        name="convengine-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, make_batch, batches):
        try:
            for i, indices in enumerate(batches):
                if self._stop.is_set() or not self._put(make_batch(i, indices)):
                    return
        except BaseException as error:  # handed to the consumer, re-raised there
            self._put(_Failure(error))
            return
        self._put(_END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self):
        self._stop.set()

    def __del__(self):
        self.close()


class DataLoader:
    """Iterates over a dataset in batches, as torch.utils.data.DataLoader.

    shuffle: a new permutation every epoch, drawn from `generator` (a numpy Generator or an
        int seed; default convengine's generator, so convengine.manual_seed fixes it).
    drop_last: drop the last incomplete batch.
    collate_fn: list of samples -> batch (default_collate stacks them into Tensors).
    prefetch: how many batches a background thread prepares ahead (0: build each batch on
        demand in the calling thread). num_workers > 0 is accepted for compatibility and
        turns prefetching on.
    Random transforms draw from convengine.data's generator, seeded per batch from the
    loader's generator, so a seeded run gives the same batches with or without prefetching.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, *, generator=None, prefetch=2, prefetch_factor=None,
                 persistent_workers=False):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral)
                                       or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size should be a positive integer value, but "
                             f"got batch_size={batch_size!r}")
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers option should be non-negative, got "
                             f"{num_workers!r}")
        if not isinstance(prefetch, numbers.Integral) or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be a non-negative int, got "
                             f"{prefetch!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader: dataset must support len() and indexing, got "
                            f"{type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = batch_size if batch_sampler is None else None
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.drop_last = drop_last
        self.collate_fn = collate_fn or default_collate
        self.num_workers = num_workers
        self.prefetch = prefetch_factor if prefetch_factor is not None else prefetch
        if num_workers > 0 and self.prefetch == 0:
            self.prefetch = 2
        self.worker_init_fn = worker_init_fn
        if isinstance(generator, numbers.Integral):
            generator = np.random.default_rng(int(generator))
        self.generator = generator

    def _rng(self):
        return self.generator if self.generator is not None else default_generator()

    def _batches(self, rng):
        if self.batch_sampler is not None:
            return [list(b) for b in self.batch_sampler]
        if self.sampler is not None:
            order = np.asarray(list(self.sampler), dtype=np.int64)
        elif self.shuffle:
            order = rng.permutation(len(self.dataset))
        else:
            order = np.arange(len(self.dataset))
        if self.batch_size is None:
            return [[int(i)] for i in order]
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[i:i + self.batch_size].tolist() for i in range(0, stop, self.batch_size)]

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self):
        rng = self._rng()
        batches = self._batches(rng)  # the permutation is drawn here, in the caller's thread
        epoch_seed = int(rng.integers(0, 2 ** 63 - 1))
        dataset, collate = self.dataset, self.collate_fn

        unbatched = self.batch_size is None and self.batch_sampler is None

        def make_batch(i, indices):
            with _random.seeded((epoch_seed, i)):
                if unbatched:  # batch_size=None: samples one by one, not collated
                    return dataset[indices[0]]
                return collate([dataset[j] for j in indices])

        if self.worker_init_fn is not None:
            self.worker_init_fn(0)
        if self.prefetch == 0:
            return (make_batch(i, b) for i, b in enumerate(batches))
        return _PrefetchIterator(make_batch, batches, self.prefetch)
