"""MNIST from IDX files, the bundled digits, and fast in-memory loaders."""

from actscope.data.digits import (
    digits_dataloaders,
    load_digits_tensors,
    validation_mask,
)
from actscope.data.errors import (
    DataError,
    IDXError,
)
from actscope.data.idx import (
    IDX_DTYPES,
    atomic_write_bytes,
    read_idx,
    write_idx,
)
from actscope.data.loaders import (
    DataLoaders,
    InMemoryLoader,
    check_finite,
    normalise,
    tensor_dataloaders,
    train_stats,
)
from actscope.data.mnist import (
    MIRRORS,
    MNIST,
    MNIST_FILES,
    download_mnist,
    find_mnist_dir,
    load_mnist,
    mnist_cache_dir,
    mnist_dataloaders,
)

__all__ = [
    "DataError",
    "DataLoaders",
    "IDXError",
    "IDX_DTYPES",
    "InMemoryLoader",
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "atomic_write_bytes",
    "check_finite",
    "digits_dataloaders",
    "download_mnist",
    "find_mnist_dir",
    "load_digits_tensors",
    "load_mnist",
    "mnist_cache_dir",
    "mnist_dataloaders",
    "normalise",
    "read_idx",
    "tensor_dataloaders",
    "train_stats",
    "validation_mask",
    "write_idx",
]
