"""MedMNIST (Yang et al., Scientific Data 2023): the .npz collections of 28x28 2D images and
28x28x28 3D volumes, from a local file or downloaded (with MD5 check) into a cache dir."""

import os
import zipfile

import numpy as np

from ..dataset import Dataset
from .download import check_md5, default_root, download_url

__all__ = ["MedMNIST", "INFO", "load_medmnist_npz"]

_ZENODO = "https://zenodo.org/record/6496656/files/{flag}.npz?download=1"

# flag -> (MD5 of the official 28-pixel .npz, task, number of classes, 3D)
INFO = {
    "pathmnist": ("a8b06965200029087d5bd730944a56c1", "multi-class", 9, False),
    "chestmnist": ("02c8a6516a18b556561a56cbdd36c4a8", "multi-label, binary-class", 14, False),
    "dermamnist": ("0744692d530f8e62ec473284d019b0c7", "multi-class", 7, False),
    "octmnist": ("c68d92d5b585d8d81f7112f81e2d0842", "multi-class", 4, False),
    "pneumoniamnist": ("28209eda62fecd6e6a2d98b1501bb15f", "binary-class", 2, False),
    "retinamnist": ("bd4c0672f1bba3e3a89f0e4e876791e4", "ordinal-regression", 5, False),
    "breastmnist": ("750601b1f35ba3300ea97c75c52ff8f6", "binary-class", 2, False),
    "bloodmnist": ("7053d0359d879ad8a5505303e11de1dc", "multi-class", 8, False),
    "tissuemnist": ("ebe78ee8b05294063de985d821c1c34b", "multi-class", 8, False),
    "organamnist": ("866b832ed4eeba67bfb9edee1d5544e6", "multi-class", 11, False),
    "organcmnist": ("0afa5834fb105f7705a7d93372119a21", "multi-class", 11, False),
    "organsmnist": ("e5c39f1af030238290b9557d9503af9d", "multi-class", 11, False),
    "organmnist3d": ("21f0a239e7f502e6eca33c3fc453c0b6", "multi-class", 11, True),
    "nodulemnist3d": ("8755a7e9e05a4d9ce80a24c3e7a256f3", "binary-class", 2, True),
    "adrenalmnist3d": ("bbd3c5a5576322bc4cdfea780653b1ce", "binary-class", 2, True),
    "fracturemnist3d": ("6aa7b0143a6b42da40027a9dda61302f", "multi-class", 3, True),
    "vesselmnist3d": ("2ba5b80617d705141f3f85627108fce8", "binary-class", 2, True),
    "synapsemnist3d": ("1235b78a3cd6280881dd7850a78eadb6", "binary-class", 2, True),
}

_SPLITS = ("train", "val", "test")


def load_medmnist_npz(path, split):
    """(images uint8, labels) of one split from a MedMNIST .npz; clear errors for a missing,
    corrupt or foreign file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MedMNIST: no file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            wanted = (f"{split}_images", f"{split}_labels")
            missing = [k for k in wanted if k not in keys]
            if missing:
                raise ValueError(f"MedMNIST: {path!r} is not a MedMNIST file for split "
                                 f"{split!r}: missing key(s) {missing}; it has {sorted(keys)}")
            images, labels = npz[wanted[0]], npz[wanted[1]]
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"MedMNIST: {path!r} is not a readable .npz file (corrupt or "
                         f"truncated?): {error}") from error
    if len(images) != len(labels):
        raise ValueError(f"MedMNIST: {path!r} holds {len(images)} {split} images but "
                         f"{len(labels)} labels")
    return images, labels


class MedMNIST(Dataset):
    """One split of a MedMNIST collection as (image, label) samples.

    path: a local .npz (read as is; verified only when md5 is given). Otherwise the file
    root/<flag>.npz is used (root: $CONVENGINE_DATA or ~/.cache/convengine/data), downloaded
    from the official Zenodo record when download=True and verified against its MD5.
    Images come out float32 in [0, 1], channel first: (1, 28, 28), (3, 28, 28) for RGB
    collections, (1, 28, 28, 28) for 3D ones. Labels: an int (one label) or an int64 vector
    (multi-label). transform(image) and target_transform(label) are applied per sample.
    """

    def __init__(self, split="train", flag="pneumoniamnist", root=None, path=None,
                 download=False, transform=None, target_transform=None, md5=None, url=None):
        if split not in _SPLITS:
            raise ValueError(f"MedMNIST: split must be one of {_SPLITS}, got {split!r}")
        if path is None:
            if flag not in INFO and url is None:
                raise ValueError(f"MedMNIST: unknown flag {flag!r}; known: {sorted(INFO)}")
            root = root or default_root()
            md5 = md5 or (INFO[flag][0] if flag in INFO else None)
            path = os.path.join(root, f"{flag}.npz")
            if download:
                download_url(url or _ZENODO.format(flag=flag), root, f"{flag}.npz", md5)
            elif not os.path.isfile(path):
                raise FileNotFoundError(f"MedMNIST: {path!r} not found; pass download=True to "
                                        f"fetch it, or path= to a local .npz")
        if md5 is not None and not check_md5(path, md5):
            raise ValueError(f"MedMNIST: checksum mismatch for {path!r} (expected md5 {md5}); "
                             f"the file is corrupt or another version")
        images, labels = load_medmnist_npz(path, split)
        self.path, self.split, self.flag = path, split, flag
        self.task = INFO.get(flag, (None, None))[1]
        self.images = self._channel_first(images, flag)
        labels = np.asarray(labels).astype(np.int64)
        self.labels = labels.reshape(-1) if labels.ndim == 1 or labels.shape[1] == 1 else labels
        self.transform, self.target_transform = transform, target_transform

    @staticmethod
    def _channel_first(images, flag):
        three_d = INFO[flag][3] if flag in INFO else images.ndim == 4 and images.shape[-1] != 3
        scale = np.float32(1 / 255) if images.dtype == np.uint8 else np.float32(1)
        images = images.astype(np.float32) * scale
        if three_d:
            return images[:, None]  # (N, 1, D, H, W)
        if images.ndim == 4:  # (N, H, W, 3) RGB
            return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
        return images[:, None]  # (N, 1, H, W)

    @property
    def n_channels(self):
        return self.images.shape[1]

    @property
    def num_classes(self):
        if self.flag in INFO:
            return INFO[self.flag][2]
        return int(self.labels.max()) + 1

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        label = self.labels[index]
        label = int(label) if np.ndim(label) == 0 else label
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __repr__(self):
        return (f"MedMNIST(flag={self.flag!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.images.shape[1:]}, path={self.path!r})")
