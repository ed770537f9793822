"""Data pipeline, as torch.utils.data plus the pieces medical imaging needs: datasets and
splits (random, stratified, k-fold), a prefetching DataLoader, 2D/3D augmentation applied
identically to images and masks (compiled kernels), and dataset loaders (MedMNIST, MNIST,
Fashion-MNIST, a synthetic phantom set)."""

from . import datasets, transforms
from ._random import generator, seeded
from .dataloader import DataLoader, default_collate
from .dataset import (ConcatDataset, Dataset, Subset, TensorDataset, TransformedDataset,
                      get_labels, k_fold, random_split, stratified_split)

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "TransformedDataset",
           "DataLoader", "default_collate", "random_split", "stratified_split", "k_fold",
           "get_labels", "transforms", "datasets", "generator", "seeded"]
