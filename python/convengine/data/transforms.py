"""Data augmentation for 2D and 3D images, applied identically to an image and its mask.

Every transform is called as t(image) -> image or t(image, mask) -> (image, mask). Images are
channel-first: (C, H, W) or (H, W) in 2D, (C, D, H, W) in 3D, or batches (N, C, H, W) /
(N, C, D, H, W) (one random draw for the whole batch; pass dims=2 for a 4-D 2D batch). The
spatial dimensionality is inferred from image.ndim (2, 3 -> 2D; 4, 5 -> 3D) unless `dims`
is given. A mask has the image's spatial shape with or without leading axes; geometric
transforms resample it with nearest-neighbour sampling (labels stay labels) and intensity
transforms leave it alone. Tensors in give Tensors out, arrays give arrays.

Random draws come from convengine.data's generator (seeded per batch by a DataLoader, else
convengine's default generator), so seeded pipelines are reproducible.
"""

import math
import numbers

import numpy as np

from ..tensor import Tensor
from . import _random
from . import functional as DF

__all__ = ["Transform", "Compose", "RandomApply", "Normalize", "ScaleIntensity", "RandomFlip",
           "RandomRot90", "RandomRotation", "RandomAffine", "RandomCrop", "CenterCrop",
           "Resize", "ElasticDeformation", "RandomGamma", "RandomContrast", "GaussianNoise",
           "GaussianBlur"]


def _unwrap(x, name):
    if isinstance(x, Tensor):
        return x.data, True
    if isinstance(x, np.ndarray):
        return x, False
    raise TypeError(f"transform: {name} must be a numpy array or a Tensor, got "
                    f"{type(x).__name__}")


def _wrap(array, as_tensor):
    return Tensor(np.ascontiguousarray(array)) if as_tensor else np.ascontiguousarray(array)


def _range(value, name, owner, symmetric_about=None, low=None):
    """(lo, hi) from a pair or from one number v (-> (about - v, about + v))."""
    if isinstance(value, numbers.Real):
        if symmetric_about is None:
            return float(value), float(value)
        if value < 0:
            raise ValueError(f"{owner}: {name} must be non-negative, got {value}")
        lo, hi = symmetric_about - value, symmetric_about + value
    else:
        value = tuple(value)
        if len(value) != 2 or value[0] > value[1]:
            raise ValueError(f"{owner}: {name} must be a number or a (min, max) pair, got "
                             f"{value}")
        lo, hi = float(value[0]), float(value[1])
    if low is not None and lo < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value}")
    return lo, hi


def _check_p(p, owner):
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{owner}: p must be a probability in [0, 1], got {p!r}")
    return float(p)


class Transform:
    """Base class: draws its random parameters once per call, then applies them to the image
    and (geometric transforms only) to the mask."""

    geometric = False

    def __init__(self, p=1.0, dims=None):
        self.p = _check_p(p, type(self).__name__)
        if dims not in (None, 2, 3):
            raise ValueError(f"{type(self).__name__}: dims must be 2, 3 or None, got {dims!r}")
        self.dims = dims

    def _spatial_dims(self, image):
        if self.dims is not None:
            if image.ndim < self.dims:
                raise ValueError(f"{type(self).__name__}: image of shape {image.shape} has "
                                 f"fewer than dims={self.dims} dimensions")
            return self.dims
        if image.ndim in (2, 3):
            return 2
        if image.ndim in (4, 5):
            return 3
        raise ValueError(f"{type(self).__name__}: expected a 2-D to 5-D image (channel first), "
                         f"got shape {image.shape}")

    def __call__(self, image, mask=None):
        img, img_tensor = _unwrap(image, "image")
        dims = self._spatial_dims(img)
        spatial = img.shape[img.ndim - dims:]
        msk = None
        if mask is not None:
            msk, mask_tensor = _unwrap(mask, "mask")
            if msk.ndim < dims or msk.shape[msk.ndim - dims:] != spatial:
                raise ValueError(f"{type(self).__name__}: mask of shape {msk.shape} does not "
                                 f"match the image's spatial shape {spatial}")
        rng = _random.generator()
        if self.p < 1 and rng.random() >= self.p:
            return image if mask is None else (image, mask)
        params = self.sample(rng, spatial, dims, img)
        out = self.apply_image(img, params, dims)
        if mask is None:
            return _wrap(out, img_tensor)
        out_mask = self.apply_mask(msk, params, dims) if self.geometric else msk
        return _wrap(out, img_tensor), _wrap(out_mask, mask_tensor)

    def sample(self, rng, spatial, dims, image):
        """The random parameters of one call (subclasses)."""
        return None

    def apply_image(self, image, params, dims):
        raise NotImplementedError

    def apply_mask(self, mask, params, dims):
        return mask

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose:
    """Applies transforms in order (to the image, or jointly to image and mask)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, image, mask=None):
        for t in self.transforms:
            if mask is None:
                image = t(image)
            else:
                image, mask = t(image, mask)
        return image if mask is None else (image, mask)

    def __repr__(self):
        return "Compose(\n" + "".join(f"    {t!r},\n" for t in self.transforms) + ")"


class RandomApply(Compose):
    """Applies the whole list with probability p."""

    def __init__(self, transforms, p=0.5):
        super().__init__(transforms)
        self.p = _check_p(p, "RandomApply")

    def __call__(self, image, mask=None):
        if _random.generator().random() >= self.p:
            return image if mask is None else (image, mask)
        return super().__call__(image, mask)


# ----- intensity ---------------------------------------------------------------------------------


class Normalize(Transform):
    """(image - mean) / std per channel (axis -dims - 1) or globally for scalars."""

    def __init__(self, mean, std, dims=None):
        super().__init__(1.0, dims)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if (self.std <= 0).any():
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def apply_image(self, image, params, dims):
        shape = self.mean.shape + (1,) * dims
        return ((image - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(
            np.float32 if image.dtype.kind != "f" else image.dtype)


class ScaleIntensity(Transform):
    """Rescales intensities linearly to [minv, maxv] (per image)."""

    def __init__(self, minv=0.0, maxv=1.0, dims=None):
        super().__init__(1.0, dims)
        self.minv, self.maxv = float(minv), float(maxv)

    def apply_image(self, image, params, dims):
        image = image.astype(np.float32) if image.dtype.kind != "f" else image
        lo, hi = image.min(), image.max()
        if hi == lo:
            return np.full_like(image, self.minv)
        return (image - lo) / (hi - lo) * (self.maxv - self.minv) + self.minv


class RandomGamma(Transform):
    """image -> lo + (hi - lo) * ((image - lo) / (hi - lo)) ** gamma, gamma drawn from
    gamma_range (log-uniformly), lo/hi the image's range."""

    def __init__(self, gamma_range=(0.7, 1.5), p=0.5, dims=None):
        super().__init__(p, dims)
        self.gamma_range = _range(gamma_range, "gamma_range", "RandomGamma")
        if self.gamma_range[0] <= 0:
            raise ValueError(f"RandomGamma: gamma_range must be positive, got {gamma_range}")

    def sample(self, rng, spatial, dims, image):
        lo, hi = np.log(self.gamma_range)
        return float(np.exp(rng.uniform(lo, hi)))

    def apply_image(self, image, gamma, dims):
        lo, hi = float(image.min()), float(image.max())
        if hi == lo:
            return image
        unit = (image - lo) / (hi - lo)
        return (lo + (hi - lo) * unit ** gamma).astype(image.dtype)


class RandomContrast(Transform):
    """image -> (image - mean) * factor + mean, factor drawn from factor_range."""

    def __init__(self, factor_range=(0.75, 1.25), p=0.5, dims=None):
        super().__init__(p, dims)
        self.factor_range = _range(factor_range, "factor_range", "RandomContrast", low=0)

    def sample(self, rng, spatial, dims, image):
        return float(rng.uniform(*self.factor_range))

    def apply_image(self, image, factor, dims):
        mean = image.mean()
        return ((image - mean) * factor + mean).astype(image.dtype)


class GaussianNoise(Transform):
    """Adds N(mean, std^2) noise, std drawn from std (a number or a range)."""

    def __init__(self, std=0.05, mean=0.0, p=0.5, dims=None):
        super().__init__(p, dims)
        self.std = _range(std, "std", "GaussianNoise", low=0)
        self.mean = float(mean)

    def sample(self, rng, spatial, dims, image):
        std = rng.uniform(*self.std)
        return rng.normal(self.mean, std, size=image.shape).astype(np.float32)

    def apply_image(self, image, noise, dims):
        return (image + noise).astype(image.dtype if image.dtype.kind == "f" else np.float32)


class GaussianBlur(Transform):
    """Gaussian smoothing of the spatial axes, sigma drawn from sigma (number or range)."""

    def __init__(self, sigma=(0.5, 1.5), p=0.5, dims=None):
        super().__init__(p, dims)
        self.sigma = _range(sigma, "sigma", "GaussianBlur", low=0)

    def sample(self, rng, spatial, dims, image):
        return float(rng.uniform(*self.sigma))

    def apply_image(self, image, sigma, dims):
        return DF.gaussian_blur(image, sigma, dims) if sigma > 0 else image


# ----- geometry ----------------------------------------------------------------------------------


class _Geometric(Transform):
    geometric = True

    def __init__(self, p=1.0, dims=None, order=1, mode="constant", cval=0.0):
        super().__init__(p, dims)
        DF._order(order, type(self).__name__)
        DF._mode(mode, type(self).__name__)
        self.order, self.mode, self.cval = order, mode, cval


class RandomFlip(Transform):
    """Flips each spatial axis (all, or those listed in `axes`, counted within the spatial
    axes: 0 = first spatial) with probability p_axis."""

    geometric = True

    def __init__(self, axes=None, p_axis=0.5, p=1.0, dims=None):
        super().__init__(p, dims)
        self.axes = None if axes is None else tuple(int(a) for a in axes)
        self.p_axis = _check_p(p_axis, "RandomFlip")

    def sample(self, rng, spatial, dims, image):
        axes = range(dims) if self.axes is None else self.axes
        for a in axes:
            if not 0 <= a < dims:
                raise ValueError(f"RandomFlip: axis {a} is not a spatial axis of a {dims}-D "
                                 f"image")
        return [a for a in axes if rng.random() < self.p_axis]

    def _flip(self, array, axes, dims):
        if not axes:
            return array
        return np.flip(array, axis=[array.ndim - dims + a for a in axes])

    def apply_image(self, image, axes, dims):
        return self._flip(image, axes, dims)

    apply_mask = apply_image


class RandomRot90(Transform):
    """Rotates by k * 90 degrees (k uniform in 0..3) in a spatial plane: in 3D one of
    `planes` (pairs of spatial axes, default all three)."""

    geometric = True

    def __init__(self, planes=None, p=1.0, dims=None):
        super().__init__(p, dims)
        self.planes = None if planes is None else [tuple(pl) for pl in planes]

    def sample(self, rng, spatial, dims, image):
        planes = self.planes or ([(0, 1)] if dims == 2 else [(0, 1), (0, 2), (1, 2)])
        plane = planes[int(rng.integers(len(planes)))]
        return int(rng.integers(4)), plane

    def apply_image(self, image, params, dims):
        k, (a, b) = params
        offset = image.ndim - dims
        return np.rot90(image, k, axes=(offset + a, offset + b))

    apply_mask = apply_image


class RandomAffine(_Geometric):
    """Random rotation, scaling, shear and translation about the image centre.

    degrees: rotation range in 2D; in 3D a range for each of the z, y, x axes (one range for
    all three if a single number or pair). translate: maximal shift as a fraction of each
    spatial size. scale: (min, max) zoom factor. shear: degrees (2D: x-shear range).
    order/mode/cval: the image's resampling (masks always use nearest and 0).
    """

    def __init__(self, degrees=0.0, translate=None, scale=None, shear=None, p=1.0, dims=None,
                 order=1, mode="constant", cval=0.0):
        super().__init__(p, dims, order, mode, cval)
        owner = type(self).__name__
        self.degrees = _range(degrees, "degrees", owner, symmetric_about=0.0)
        self.translate = None if translate is None else tuple(
            [float(translate)] * 3 if isinstance(translate, numbers.Real) else translate)
        if self.translate is not None and any(not 0 <= t <= 1 for t in self.translate):
            raise ValueError(f"{owner}: translate fractions must lie in [0, 1], got {translate}")
        self.scale = None if scale is None else _range(scale, "scale", owner)
        if self.scale is not None and self.scale[0] <= 0:
            raise ValueError(f"{owner}: scale must be positive, got {scale}")
        self.shear = None if shear is None else _range(shear, "shear", owner,
                                                       symmetric_about=0.0)

    def sample(self, rng, spatial, dims, image):
        if dims == 2:
            rotation = DF.rotation_matrix(rng.uniform(*self.degrees), 2)
        else:
            rotation = DF.rotation_matrix([rng.uniform(*self.degrees) for _ in range(3)], 3)
        linear = rotation
        if self.scale is not None:
            linear = linear * rng.uniform(*self.scale)
        if self.shear is not None:
            shear = np.eye(dims)
            shear[0, dims - 1] = math.tan(math.radians(rng.uniform(*self.shear)))
            linear = linear @ shear
        translate = np.zeros(dims)
        if self.translate is not None:
            for k in range(dims):
                limit = self.translate[min(k, len(self.translate) - 1)] * spatial[k]
                translate[k] = rng.uniform(-limit, limit)
        return DF.affine_matrix(spatial, spatial, linear, translate)

    def apply_image(self, image, matrix, dims):
        return DF.affine(image, matrix, dims, order=self.order, mode=self.mode, cval=self.cval)

    def apply_mask(self, mask, matrix, dims):
        return DF.affine(mask, matrix, dims, order=0, mode="constant", cval=0)


class RandomRotation(RandomAffine):
    """Rotation by any angle drawn from degrees (see RandomAffine for 3D)."""

    def __init__(self, degrees, p=1.0, dims=None, order=1, mode="constant", cval=0.0):
        super().__init__(degrees, p=p, dims=dims, order=order, mode=mode, cval=cval)


def _size_tuple(size, dims, owner):
    if isinstance(size, numbers.Integral):
        size = (int(size),) * dims
    size = tuple(int(s) for s in size)
    if len(size) != dims or any(s <= 0 for s in size):
        raise ValueError(f"{owner}: size must be a positive int or {dims} of them, got {size}")
    return size


def _crop(array, starts, size, dims):
    """Crops (with zero padding where the window leaves the array)."""
    offset = array.ndim - dims
    spatial = array.shape[offset:]
    pads = [(0, 0)] * offset
    slices = [slice(None)] * offset
    for s, n, k in zip(starts, spatial, size):
        before, after = max(0, -s), max(0, s + k - n)
        pads.append((before, after))
        slices.append(slice(s + before, s + before + k))
    if any(p != (0, 0) for p in pads):
        array = np.pad(array, pads)
    return array[tuple(slices)]


class RandomCrop(Transform):
    """A random window of `size` (zero-padded first when the image is smaller)."""

    geometric = True

    def __init__(self, size, p=1.0, dims=None):
        super().__init__(p, dims)
        self.size = size

    def sample(self, rng, spatial, dims, image):
        size = _size_tuple(self.size, dims, "RandomCrop")
        starts = [int(rng.integers(0, n - k + 1)) if n >= k else -((k - n) // 2)
                  for n, k in zip(spatial, size)]
        return starts, size

    def apply_image(self, image, params, dims):
        return _crop(image, params[0], params[1], dims)

    apply_mask = apply_image


class CenterCrop(RandomCrop):
    """The central window of `size` (zero-padded when the image is smaller)."""

    def sample(self, rng, spatial, dims, image):
        size = _size_tuple(self.size, dims, "CenterCrop")
        return [(n - k) // 2 for n, k in zip(spatial, size)], size


class Resize(_Geometric):
    """Resizes the spatial axes to `size` (linear for images by default, nearest for masks)."""

    def __init__(self, size, order=1, dims=None):
        super().__init__(1.0, dims, order, "nearest", 0.0)
        self.size = size

    def sample(self, rng, spatial, dims, image):
        return _size_tuple(self.size, dims, "Resize")

    def apply_image(self, image, size, dims):
        return DF.resize(image, size, dims, order=self.order)

    def apply_mask(self, mask, size, dims):
        return DF.resize(mask, size, dims, order=0)


class ElasticDeformation(_Geometric):
    """Elastic deformation (Simard et al., 2003): a random displacement field, uniform in
    [-1, 1] per voxel and axis, smoothed by a Gaussian of `sigma` voxels and scaled by
    `alpha` voxels, moves every voxel; masks follow with nearest sampling."""

    def __init__(self, alpha=(10.0, 30.0), sigma=(3.0, 5.0), p=0.5, dims=None, order=1,
                 mode="reflect", cval=0.0):
        super().__init__(p, dims, order, mode, cval)
        self.alpha = _range(alpha, "alpha", "ElasticDeformation", low=0)
        self.sigma = _range(sigma, "sigma", "ElasticDeformation", low=0)

    def sample(self, rng, spatial, dims, image):
        alpha, sigma = rng.uniform(*self.alpha), rng.uniform(*self.sigma)
        noise = rng.uniform(-1, 1, size=(dims,) + tuple(spatial))
        field = DF.gaussian_blur(noise, sigma, dims, mode="constant") if sigma > 0 else noise
        grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in spatial],
                                    indexing="ij"))
        return grid + alpha * field

    def apply_image(self, image, coords, dims):
        return DF.warp(image, coords, order=self.order, mode=self.mode, cval=self.cval)

    def apply_mask(self, mask, coords, dims):
        return DF.warp(mask, coords, order=0, mode=self.mode, cval=0)
