"""A synthetic phantom data set that needs no download: seeded 2D or 3D images of an
elliptical "organ" with elliptical "lesions" of varying contrast and noise.

Tasks:
  'classification': (image, label), label 1 when the image contains a lesion.
  'segmentation':   (image, mask), mask 0 = background, 1 = organ, 2 = lesion.
  'denoising':      (noisy, clean).
Each sample is generated from (seed, index) alone, so it is the same on every call and in any
thread, and a data set of any length costs no memory.
"""

import numbers

import numpy as np

from ..dataset import Dataset

__all__ = ["PhantomDataset"]

_TASKS = ("classification", "segmentation", "denoising")


def _ellipsoid(grid, centre, radii, rotation):
    """Boolean mask of points p with |R^T (p - c) / r| <= 1."""
    offsets = np.stack([g - c for g, c in zip(grid, centre)], axis=-1)  # (*S, dims)
    local = offsets @ rotation  # rotate into the ellipsoid's frame
    return ((local / np.asarray(radii)) ** 2).sum(axis=-1) <= 1.0


def _random_rotation(rng, dims):
    if dims == 2:
        a = rng.uniform(0, np.pi)
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


class PhantomDataset(Dataset):
    """n seeded phantom images of `size` (an int or a 2/3-tuple; dims picks 2D or 3D).

    lesion_probability: chance that an image has lesions (classification labels are
    balanced in expectation). contrast: (min, max) lesion intensity relative to the organ
    (signs vary: bright and dark lesions). noise_std: (min, max) Gaussian noise level.
    transform: applied to the image ('classification'), jointly to (image, mask)
    ('segmentation'), or to [noisy, clean] stacked as channels ('denoising').
    """

    def __init__(self, n=256, size=32, dims=2, task="classification", seed=0,
                 lesion_probability=0.5, max_lesions=3, contrast=(0.15, 0.5),
                 noise_std=(0.02, 0.1), transform=None):
        if task not in _TASKS:
            raise ValueError(f"PhantomDataset: task must be one of {_TASKS}, got {task!r}")
        if dims not in (2, 3):
            raise ValueError(f"PhantomDataset: dims must be 2 or 3, got {dims!r}")
        if isinstance(size, numbers.Integral):
            size = (int(size),) * dims
        size = tuple(int(s) for s in size)
        if len(size) != dims or any(s < 8 for s in size):
            raise ValueError(f"PhantomDataset: size must be {dims} sizes >= 8, got {size}")
        if not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"PhantomDataset: n must be a positive int, got {n!r}")
        if not 0 <= lesion_probability <= 1:
            raise ValueError(f"PhantomDataset: lesion_probability must lie in [0, 1], got "
                             f"{lesion_probability}")
        self.n, self.size, self.dims, self.task, self.seed = int(n), size, dims, task, seed
        self.lesion_probability, self.max_lesions = lesion_probability, max_lesions
        self.contrast, self.noise_std = tuple(contrast), tuple(noise_std)
        self.transform = transform
        self._grid = np.meshgrid(*[np.arange(s, dtype=np.float64) for s in size],
                                 indexing="ij")

    @property
    def labels(self):
        """Classification labels of every sample (cheap: no image is drawn)."""
        return np.array([self._has_lesion(np.random.default_rng((self.seed, i)))
                         for i in range(self.n)], dtype=np.int64)

    def _has_lesion(self, rng):
        return int(rng.random() < self.lesion_probability)

    def generate(self, index):
        """(clean image (*size) float32, mask (*size) int64, label) of sample `index`."""
        rng = np.random.default_rng((self.seed, index))
        label = self._has_lesion(rng)
        size = np.asarray(self.size, np.float64)
        grid = self._grid
        organ_centre = size / 2 + rng.uniform(-0.05, 0.05, self.dims) * size
        organ_radii = size * rng.uniform(0.3, 0.42, self.dims)
        organ = _ellipsoid(grid, organ_centre, organ_radii, _random_rotation(rng, self.dims))
        level = rng.uniform(0.35, 0.6)
        # a gentle intensity ramp across the organ (an uneven coil / beam)
        ramp = sum(rng.uniform(-0.1, 0.1) * (g / s - 0.5) for g, s in zip(grid, size))
        image = np.where(organ, level + ramp, 0.05)
        mask = organ.astype(np.int64)
        if label:
            for _ in range(int(rng.integers(1, self.max_lesions + 1))):
                radii = size * rng.uniform(0.05, 0.14, self.dims)
                # a centre well inside the organ
                direction = rng.standard_normal(self.dims)
                direction /= np.linalg.norm(direction)
                centre = organ_centre + direction * organ_radii * rng.uniform(0, 0.5)
                lesion = _ellipsoid(grid, centre, radii, _random_rotation(rng, self.dims))
                lesion &= organ
                sign = 1 if rng.random() < 0.7 else -1
                image = np.where(lesion, image + sign * rng.uniform(*self.contrast), image)
                mask[lesion] = 2
        return image.astype(np.float32), mask, label

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        if not -self.n <= index < self.n:
            raise IndexError(f"PhantomDataset: index {index} out of range for {self.n} samples")
        index %= self.n
        clean, mask, label = self.generate(index)
        noise_rng = np.random.default_rng((self.seed, index, 1))
        std = noise_rng.uniform(*self.noise_std)
        noisy = (clean + noise_rng.normal(0, std, clean.shape)).astype(np.float32)[None]
        if self.task == "classification":
            return (self.transform(noisy) if self.transform else noisy), label
        if self.task == "segmentation":
            if self.transform:
                return self.transform(noisy, mask)
            return noisy, mask
        pair = np.concatenate([noisy, clean[None]])
        if self.transform:
            pair = self.transform(pair)
        return pair[:1], pair[1:]
