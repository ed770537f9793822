"""Augmentation: the compiled kernels against scipy.ndimage / NumPy, image and mask staying
aligned under every geometric transform (2D and 3D), reproducibility and bad input."""

import numpy as np
import pytest

import convengine as ce
from convengine import _transforms
from convengine.data import functional as DF
from convengine.data import seeded
from convengine.data import transforms as T
from conftest import assert_close

SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "reflect": "mirror"}


def _random_matrix(rng, dims):
    linear = np.eye(dims) + rng.uniform(-0.3, 0.3, (dims, dims))
    return np.concatenate([linear, rng.uniform(-2, 2, (dims, 1))], axis=1)


@pytest.mark.parametrize("dims,shape", [(2, (3, 9, 7)), (3, (2, 6, 5, 7))])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect"])
def test_affine_kernel_matches_scipy(dims, shape, order, mode, rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = rng.standard_normal(shape).astype(np.float32)
    matrix = _random_matrix(rng, dims)
    out_shape = tuple(s + 2 for s in shape[1:])
    ours = DF.affine(image, matrix, dims, out_shape, order=order, mode=mode, cval=0.5)
    for c in range(shape[0]):
        ref = ndimage.affine_transform(image[c].astype(np.float64), matrix[:, :dims],
                                       offset=matrix[:, dims], output_shape=out_shape,
                                       order=order, mode=SCIPY_MODE[mode], cval=0.5)
        assert_close(ours[c], ref, "resample")


@pytest.mark.parametrize("dims,shape", [(2, (2, 8, 6)), (3, (1, 5, 6, 4))])
def test_warp_kernel_matches_scipy_map_coordinates(dims, shape, rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = rng.standard_normal(shape).astype(np.float32)
    coords = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape[1:]],
                                  indexing="ij")) + rng.uniform(-1.5, 1.5, (dims,) + shape[1:])
    for order, mode in [(1, "reflect"), (0, "nearest"), (1, "constant")]:
        ours = DF.warp(image, coords, order=order, mode=mode)
        for c in range(shape[0]):
            ref = ndimage.map_coordinates(image[c].astype(np.float64), coords, order=order,
                                          mode=SCIPY_MODE[mode])
            assert_close(ours[c], ref, "resample")


@pytest.mark.parametrize("shape,dims", [((2, 12, 9), 2), ((1, 6, 7, 8), 3)])
def test_gaussian_blur_matches_scipy(shape, dims, rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = rng.standard_normal(shape).astype(np.float32)
    ours = DF.gaussian_blur(image, 1.3, dims)
    ref = ndimage.gaussian_filter(image.astype(np.float64), [0] + [1.3] * dims, mode="mirror")
    assert_close(ours, ref, "resample")


def test_kernels_against_numpy_without_scipy(rng):
    """The slow, obvious path: integer translations are exact shifts."""
    image = rng.standard_normal((2, 7, 8)).astype(np.float32)
    matrix = np.array([[1.0, 0, 2], [0, 1.0, -1]])  # out(i, j) = in(i + 2, j - 1)
    out = DF.affine(image, matrix, 2, order=1)
    np.testing.assert_array_equal(out[:, :5, 1:], image[:, 2:, :7])
    assert (out[:, 5:] == 0).all() and (out[:, :, 0] == 0).all()
    k = _transforms.gaussian_kernel(1.0)
    assert len(k) == 9 and abs(k.sum() - 1) < 1e-12
    with pytest.raises(ValueError):
        _transforms.affine_2d(image, np.zeros((3, 3)), 4, 4)
    with pytest.raises(ValueError, match="mode"):
        DF.affine(image, matrix, 2, mode="wrap")


def test_resize_matches_bilinear_interpolate(rng):
    image = rng.standard_normal((1, 2, 5, 7)).astype(np.float32)
    for size in [(9, 12), (3, 4)]:
        ours = DF.resize(image, size, 2, order=1)
        ref = ce.nn.functional.interpolate(ce.tensor(image), size=size, mode="bilinear").data
        assert_close(ours, ref, "resample")
    mask = rng.integers(0, 4, (5, 7))
    resized = T.Resize((10, 14))(image[0], mask)[1]
    assert resized.dtype == mask.dtype and set(np.unique(resized)) <= set(np.unique(mask))


def _blob_pair(rng, shape):
    """A label map with several regions and an image that equals it (as float)."""
    mask = np.zeros(shape, dtype=np.int64)
    grid = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    for label in (1, 2, 3):
        centre = [rng.uniform(0.25 * s, 0.75 * s) for s in shape]
        r = min(shape) * rng.uniform(0.15, 0.3)
        mask[sum((g - c) ** 2 for g, c in zip(grid, centre)) <= r * r] = label
    return mask.astype(np.float32)[None], mask


GEOMETRIC = [
    lambda: T.RandomFlip(p_axis=0.7),
    lambda: T.RandomRot90(),
    lambda: T.RandomRotation(45, order=0),
    lambda: T.RandomAffine(30, translate=0.1, scale=(0.8, 1.2), shear=10, order=0),
    lambda: T.ElasticDeformation(alpha=8, sigma=3, p=1.0, order=0),
    lambda: T.RandomCrop(10),
    lambda: T.CenterCrop(20),
    lambda: T.Resize(11, order=0),
]


@pytest.mark.parametrize("make", GEOMETRIC)
@pytest.mark.parametrize("shape", [(16, 18), (12, 10, 14)])
def test_geometric_transforms_keep_image_and_mask_aligned(make, shape, rng):
    image, mask = _blob_pair(rng, shape)
    t = make()
    for seed in range(3):
        with seeded(seed):
            out_image, out_mask = t(image, mask)
        assert out_image.shape[1:] == out_mask.shape
        # nearest-sampled image and mask see exactly the same geometry
        np.testing.assert_array_equal(out_image[0].astype(np.int64), out_mask)
        assert out_mask.dtype == mask.dtype


def test_linear_image_follows_nearest_mask(rng):
    image, mask = _blob_pair(rng, (24, 24))
    t = T.RandomAffine(40, scale=(0.9, 1.1))
    with seeded(4):
        out_image, out_mask = t(image, mask)
    agree = np.mean(np.rint(out_image[0]).astype(np.int64) == out_mask)
    assert agree > 0.9


def test_3d_rotation_about_z_equals_slice_wise_2d_rotation(rng):
    vol = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    m3 = DF.affine_matrix((4, 9, 9), linear=DF.rotation_matrix((30, 0, 0), 3))
    m2 = DF.affine_matrix((9, 9), linear=DF.rotation_matrix(30, 2))
    out3 = DF.affine(vol, m3, 3)
    out2 = DF.affine(vol[0], m2, 2)
    assert_close(out3[0], out2, "resample")


def test_flip_rot90_crop_exact(rng):
    image = rng.standard_normal((2, 5, 6)).astype(np.float32)
    mask = rng.integers(0, 3, (5, 6))
    out, m = T.RandomFlip(axes=[0], p_axis=1.0)(image, mask)
    np.testing.assert_array_equal(out, image[:, ::-1]) and np.testing.assert_array_equal(
        m, mask[::-1])
    with seeded(0):
        out, m = T.RandomRot90()(image, mask)
    k = sum(np.array_equal(m, np.rot90(mask, j)) for j in range(4))
    assert k >= 1
    out = T.CenterCrop((3, 8))(image)
    assert out.shape == (2, 3, 8) and (out[:, :, 0] == 0).all()
    np.testing.assert_array_equal(out[:, :, 1:7], image[:, 1:4])


def test_intensity_transforms_leave_the_mask_alone_and_are_seeded(rng):
    image = rng.uniform(0, 1, (1, 8, 8)).astype(np.float32)
    mask = rng.integers(0, 2, (8, 8))
    for t in [T.RandomGamma(p=1), T.RandomContrast(p=1), T.GaussianNoise(0.1, p=1),
              T.GaussianBlur(1.0, p=1), T.Normalize([0.5], [0.2]), T.ScaleIntensity()]:
        with seeded(1):
            a, m = t(image, mask)
        with seeded(1):
            b, _ = t(image, mask)
        np.testing.assert_array_equal(a, b)
        assert m is mask
        assert not np.array_equal(a, image)
    gamma = T.RandomGamma(p=1)
    with seeded(2):
        g = gamma(image)
    assert g.min() >= image.min() - 1e-6 and g.max() <= image.max() + 1e-6


def test_probability_tensors_and_batches(rng):
    image = ce.tensor(rng.standard_normal((1, 6, 6)).astype(np.float32))
    out = T.RandomFlip(p=0.0)(image)
    assert out is image
    out = T.GaussianNoise(0.1, p=1.0)(image)
    assert isinstance(out, ce.Tensor)
    batch = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)  # NCHW: dims=2
    out = T.RandomRotation(20, dims=2)(batch)
    assert out.shape == batch.shape
    vol_batch = rng.standard_normal((2, 1, 4, 5, 6)).astype(np.float32)  # NCDHW
    assert T.RandomAffine(10)(vol_batch).shape == vol_batch.shape


def test_bad_input():
    image = np.zeros((1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="mask of shape"):
        T.RandomFlip()(image, np.zeros((7, 8)))
    with pytest.raises(ValueError, match="p must be"):
        T.RandomFlip(p=2)
    with pytest.raises(ValueError, match="dims"):
        T.RandomFlip(dims=4)
    with pytest.raises(TypeError, match="image"):
        T.RandomFlip()([1, 2, 3])
    with pytest.raises(ValueError, match="degrees"):
        T.RandomRotation(-5)
    with pytest.raises(ValueError, match="scale"):
        T.RandomAffine(scale=(0, 1))
    with pytest.raises(ValueError, match="std"):
        T.Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="size"):
        T.RandomCrop(0)(image)
    with pytest.raises(TypeError, match="callable"):
        T.Compose([3])
