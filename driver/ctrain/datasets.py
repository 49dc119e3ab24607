"""The data sets CTrain trains on, by name: the one list behind
``get_dataset`` (here) and the CLI's ``--dataset`` choices (docs/data.md)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Tuple

from .data import Dataset, load_digits, load_mnist_dir
from .data_cifar import load_cifar10_dir
from .data_user import load_image_folder, load_npz
from .errors import DatasetError

__all__ = ["Source", "DATASETS", "FASHION_CLASS_NAMES", "get_dataset"]

#: label order of Fashion-MNIST (Xiao, Rasul and Vollgraf 2017)
FASHION_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_COUNTS = ("train_count", "test_count")


@dataclass(frozen=True)
class Source:
    """How to load one named data set: `load(path, **options)` returns a Dataset."""

    load: Callable[..., Dataset]
    needs_path: bool
    help: str
    options: Tuple[str, ...] = _COUNTS


def _fashion(path, **kw) -> Dataset:
    ds = load_mnist_dir(path, **kw)
    return dataclasses.replace(ds, name="fashion-mnist", class_names=FASHION_CLASS_NAMES)


DATASETS = {
    "digits": Source(lambda _path, **kw: load_digits(**kw), False,
                     "scikit-learn's 8x8 digits (built in)",
                     _COUNTS + ("seed", "test_fraction")),
    "mnist": Source(load_mnist_dir, True, "MNIST IDX files in --data-dir"),
    "fashion-mnist": Source(_fashion, True, "Fashion-MNIST IDX files in --data-dir"),
    "cifar10": Source(load_cifar10_dir, True,
                      "CIFAR-10 binary batches (data_batch_N.bin, test_batch.bin, raw or .gz) in --data-dir"),
    "npz": Source(load_npz, True, "your arrays: the .npz file --data-dir (docs/data.md)"),
    "folder": Source(load_image_folder, True,
                     "your images: --data-dir holds one folder per class (needs Pillow)",
                     _COUNTS + ("image_size",)),
}


def get_dataset(name: str = "digits", data_dir=None, **options) -> Dataset:
    """Data set `name` (case-insensitive) from `data_dir`: the front door, so the
    CLI and a config choose with a string.

    Options a source does not take are an error when set and ignored when
    None, so the trainer can pass every option it has.
    """
    key = (name or "digits").lower()
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    src = DATASETS[key]
    for opt in [k for k in options if k not in src.options]:
        if options.pop(opt) is not None:
            raise DatasetError(f"{key}: option {opt!r} does not apply to this data set "
                               f"(it takes {', '.join(src.options)})")
    if data_dir is not None and not src.needs_path:
        raise DatasetError(f"{key}: does not read a data directory (data_dir {str(data_dir)!r}); a data directory "
                           f"is read by {', '.join(k for k, v in DATASETS.items() if v.needs_path)}")
    if src.needs_path and data_dir is None:
        raise DatasetError(f"{key}: data_dir is required (--data-dir: {src.help})")
    return src.load(data_dir, **options)
