"""MNIST and Fashion-MNIST from IDX files (gzipped or not), local or downloaded (MD5)."""

import gzip
import os

import numpy as np

from ..dataset import Dataset
from .download import default_root, download_url

__all__ = ["read_idx", "MNIST", "FashionMNIST"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def read_idx(path):
    """The array in an IDX file (magic 0 0 <type> <ndim>, big-endian dims, then data)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as error:
        raise ValueError(f"read_idx: cannot read {path!r}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path!r} is truncated (header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"read_idx: {path!r} should hold {expected} data bytes for shape "
                         f"{shape}, found {len(raw) - header} (truncated or corrupt)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


class MNIST(Dataset):
    """MNIST digits: (image float32 (1, 28, 28) in [0, 1], label int).

    root: a directory holding the four IDX files (train-images-idx3-ubyte[.gz] ...); default
    $CONVENGINE_DATA/<name>. download=True fetches missing files from the mirror into root,
    verifying their MD5.
    """

    name = "mnist"
    mirror = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    resources = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    classes = [str(i) for i in range(10)]

    def __init__(self, root=None, train=True, download=False, transform=None,
                 target_transform=None, mirror=None):
        self.root = root or os.path.join(default_root(), self.name)
        prefix = "train" if train else "t10k"
        files = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
        paths = []
        for base in files:
            path = self._find(base)
            if path is None:
                if not download:
                    raise FileNotFoundError(f"{type(self).__name__}: {base}[.gz] not found in "
                                            f"{self.root!r}; pass download=True or put it there")
                gz = base + ".gz"
                path = download_url((mirror or self.mirror) + gz, self.root, gz,
                                    self.resources.get(gz))
            paths.append(path)
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: expected images (N, H, W) and labels "
                             f"(N,), got {images.shape} and {labels.shape}")
        self.images = (images.astype(np.float32) / 255)[:, None]
        self.labels = labels.astype(np.int64)
        self.train = train
        self.transform, self.target_transform = transform, target_transform

    def _find(self, base):
        for name in (base, base + ".gz"):
            path = os.path.join(self.root, name)
            if os.path.isfile(path):
                return path
        return None

    targets = property(lambda self: self.labels)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image, label = self.images[index], int(self.labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): the same IDX layout, ten clothing classes."""

    name = "fashion-mnist"
    mirror = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    resources = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
