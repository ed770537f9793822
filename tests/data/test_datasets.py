"""Dataset loaders: MedMNIST (the real PneumoniaMNIST file in ../shared/data, downloads from
file:// URLs and a replaced fetch, checksums, corrupt files), MNIST IDX files written here,
and the synthetic phantom set."""

import gzip
import hashlib
import os
import pathlib

import numpy as np
import pytest

from convengine import data
from convengine.data.datasets import download as dl
from convengine.data.datasets import MNIST, FashionMNIST, MedMNIST, PhantomDataset, read_idx

REPO = pathlib.Path(__file__).resolve().parents[2]
PNEUMONIA = REPO.parent / "shared" / "data" / "pneumoniamnist_balanced.npz"


def _md5(path):
    return hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()


def _small_npz(path, three_d=False, rgb=False):
    rng = np.random.default_rng(0)
    shape = (5, 4, 4, 4) if three_d else ((5, 4, 4, 3) if rgb else (5, 4, 4))
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (5, 1), dtype=np.uint8)
    np.savez(path, **arrays)
    return arrays


@pytest.mark.skipif(not PNEUMONIA.exists(), reason="../shared/data/pneumoniamnist_balanced.npz "
                                                   "is not present")
def test_real_pneumoniamnist_file():
    sizes = {"train": 2428, "val": 270, "test": 468}
    for split, n in sizes.items():
        ds = MedMNIST(split, path=str(PNEUMONIA))
        assert len(ds) == n and ds.n_channels == 1 and ds.num_classes == 2
        image, label = ds[0]
        assert image.shape == (1, 28, 28) and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1 and label in (0, 1)
        assert np.bincount(ds.labels).tolist() == [n // 2, n // 2]
    ds = MedMNIST("test", path=str(PNEUMONIA), md5="3062d8c693378b506564f35a50301b11")
    loader = data.DataLoader(ds, batch_size=64, shuffle=True, generator=0)
    x, y = next(iter(loader))
    assert x.shape == (64, 1, 28, 28) and y.dtype == np.int64


def test_medmnist_download_with_checksum(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    arrays = _small_npz(source)
    cache = tmp_path / "cache"
    ds = MedMNIST("val", flag="pneumoniamnist", root=str(cache), download=True,
                  url=source.as_uri(), md5=_md5(source))
    assert (cache / "pneumoniamnist.npz").exists() and len(ds) == 5
    np.testing.assert_allclose(ds.images[:, 0], arrays["val_images"] / 255, rtol=1e-6)
    # second time: found in the cache, nothing fetched
    monkeypatch.setattr(dl, "fetch", lambda url, out: pytest.fail("fetched again"))
    MedMNIST("val", flag="pneumoniamnist", root=str(cache), download=True, md5=_md5(source))
    # a replaced fetch delivering wrong bytes: checksum error, no file kept
    monkeypatch.setattr(dl, "fetch", lambda url, out: out.write(b"not an npz"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        MedMNIST("train", flag="breastmnist", root=str(cache), download=True)
    assert not list(cache.glob("breastmnist*"))
    # the default URL is the official Zenodo record and the MD5 is the official one
    seen = {}

    def fake_fetch(url, out):
        seen["url"] = url
        out.write(source.read_bytes())

    monkeypatch.setattr(dl, "fetch", fake_fetch)
    with pytest.raises(ValueError, match="checksum mismatch"):
        MedMNIST("train", flag="dermamnist", root=str(cache), download=True)
    assert seen["url"].startswith("https://zenodo.org/") and "dermamnist.npz" in seen["url"]


def test_medmnist_errors_and_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        MedMNIST("train", root=str(tmp_path))
    with pytest.raises(FileNotFoundError):
        MedMNIST("train", path=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="split"):
        MedMNIST("dev", path="x.npz")
    with pytest.raises(ValueError, match="unknown flag"):
        MedMNIST("train", flag="catsmnist", root=str(tmp_path))
    corrupt = tmp_path / "corrupt.npz"
    _small_npz(corrupt)
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        MedMNIST("train", path=str(corrupt))
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="missing key"):
        MedMNIST("train", path=str(other))
    good = tmp_path / "good.npz"
    _small_npz(good)
    with pytest.raises(ValueError, match="checksum mismatch"):
        MedMNIST("train", path=str(good), md5="0" * 32)
    rgb = tmp_path / "rgb.npz"
    _small_npz(rgb, rgb=True)
    assert MedMNIST("train", flag="bloodmnist", path=str(rgb))[0][0].shape == (3, 4, 4)
    vol = tmp_path / "vol.npz"
    _small_npz(vol, three_d=True)
    assert MedMNIST("train", flag="organmnist3d", path=str(vol))[0][0].shape == (1, 4, 4, 4)


def _write_idx(path, array, gz):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        pathlib.Path(path).write_bytes(payload)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_local_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 6).astype(np.uint8)
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, gz)
    ds = MNIST(root=str(tmp_path), train=False)
    assert len(ds) == 6
    image, label = ds[2]
    assert image.shape == (1, 28, 28) and label == labels[2]
    np.testing.assert_allclose(image[0], images[2] / 255, rtol=1e-6)
    np.testing.assert_array_equal(read_idx(str(tmp_path / f"t10k-labels-idx1-ubyte{suffix}")),
                                  labels)
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    _write_idx(tmp_path / "ints.idx", big, False)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "ints.idx")), big)
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNIST(root=str(tmp_path), train=True)


def test_mnist_download_and_corrupt_idx(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    src = tmp_path / "mirror"
    src.mkdir()
    _write_idx(src / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (3, 28, 28),
                                                                dtype=np.uint8), True)
    _write_idx(src / "train-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8), True)
    monkeypatch.setattr(FashionMNIST, "resources", {
        name: _md5(src / name) for name in ("train-images-idx3-ubyte.gz",
                                            "train-labels-idx1-ubyte.gz")})
    ds = FashionMNIST(root=str(tmp_path / "cache"), download=True, mirror=src.as_uri() + "/")
    assert len(ds) == 3 and ds[1][1] == 2 and ds.classes[0] == "T-shirt/top"
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(str(bad))
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(str(bad))
    with pytest.raises(RuntimeError, match="download of"):
        dl.download_url((tmp_path / "nothing").as_uri(), str(tmp_path / "c2"), "f.bin")


@pytest.mark.parametrize("dims,size", [(2, 24), (3, 12)])
def test_phantom_dataset(dims, size):
    cls = PhantomDataset(20, size=size, dims=dims, seed=3)
    image, label = cls[4]
    assert image.shape == (1,) + (size,) * dims and image.dtype == np.float32
    again, label2 = PhantomDataset(20, size=size, dims=dims, seed=3)[4]
    np.testing.assert_array_equal(image, again)
    assert label == label2 == cls.labels[4]
    assert 0.2 < cls.labels.mean() < 0.8
    seg = PhantomDataset(20, size=size, dims=dims, seed=3, task="segmentation")
    positives = [i for i in range(20) if cls.labels[i]]
    x, mask = seg[positives[0]]
    assert mask.shape == (size,) * dims and set(np.unique(mask)) <= {0, 1, 2}
    assert 2 in mask
    noisy, clean = PhantomDataset(4, size=size, dims=dims, task="denoising")[0]
    assert noisy.shape == clean.shape and 0 < np.std(noisy - clean) < 0.2
    with pytest.raises(ValueError, match="task"):
        PhantomDataset(task="detection")
    with pytest.raises(IndexError):
        cls[20]


def test_default_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVENGINE_DATA", str(tmp_path))
    assert dl.default_root() == str(tmp_path)
    monkeypatch.delenv("CONVENGINE_DATA")
    assert dl.default_root().endswith(os.path.join("convengine", "data"))
