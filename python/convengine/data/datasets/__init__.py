"""Data sets: MedMNIST (.npz), MNIST / Fashion-MNIST (IDX) and a synthetic phantom set."""

from .download import check_md5, default_root, download_url, md5sum
from .medmnist import INFO as MEDMNIST_INFO
from .medmnist import MedMNIST, load_medmnist_npz
from .mnist import MNIST, FashionMNIST, read_idx
from .phantom import PhantomDataset

__all__ = ["MedMNIST", "MEDMNIST_INFO", "load_medmnist_npz", "MNIST", "FashionMNIST",
           "read_idx", "PhantomDataset", "download_url", "check_md5", "md5sum", "default_root"]
