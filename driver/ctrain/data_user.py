"""A user's own data: arrays in an ``.npz`` file, or image files in one folder
per class.  Both end as a Dataset (float32 NCHW, int64 labels); the formats
are specified in docs/data.md.

Why strict: a user's data reaches these readers once, hand-made, and every
mistake (swapped axes, a label past the class list, a 3000-image test set
with 2999 labels) should stop here with one line naming it, not surface
epochs later as poor accuracy.
"""
from __future__ import annotations

import os
import re
import zipfile
import zlib
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .data import Dataset, _cap
from .errors import DatasetError

__all__ = ["load_npz", "load_image_folder", "parse_image_size", "IMAGE_EXTENSIONS",
           "TEST_PERCENT", "FOLDER_ORDER_SEED"]

#: percent held out when a file or folder has no test set of its own
TEST_PERCENT = 20
#: the fixed permutation that mixes a folder's classes before its split
FOLDER_ORDER_SEED = 0
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                    ".ppm", ".pgm", ".pbm")
_LAYOUTS = ("NCHW", "NHWC")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test", "layout", "class_names")


# --------------------------------------------------------------------------
# checks shared by both formats
# --------------------------------------------------------------------------

def _split_tail(source, x, y, train_count, test_count):
    """One set: the first train_count samples train, the last test_count test.

    Defaults: TEST_PERCENT of the samples (rounded down) test, the rest train.
    """
    n = len(x)
    n_test = n * TEST_PERCENT // 100 if test_count is None else int(test_count)
    n_train = n - n_test if train_count is None else int(train_count)
    if n_train < 0 or n_test < 0 or n_train + n_test > n:
        raise DatasetError(f"{source}: cannot split {n} samples into {n_train} train + {n_test} test; "
                           f"pass smaller train_count/test_count")
    return x[:n_train], y[:n_train], x[n - n_test:], y[n - n_test:]


def _check_labels(source, y, n_images, class_names):
    """Integer, 1-D, one per image, in 0..len(class_names)-1 when named."""
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise DatasetError(f"{source}: labels must be a 1-D integer array, got {y.dtype} {list(y.shape)}")
    if len(y) != n_images:
        raise DatasetError(f"{source}: {n_images} images but {len(y)} labels")
    if y.size and y.min() < 0:
        raise DatasetError(f"{source}: label {int(y.min())} is negative")
    if y.size and class_names is not None and y.max() >= len(class_names):
        raise DatasetError(f"{source}: label {int(y.max())} out of range for the "
                           f"{len(class_names)} class names")
    return y.astype(np.int64)


def _finish(name, train_x, train_y, test_x, test_y, class_names, source):
    """Dataset after the cross-split checks every reader needs."""
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DatasetError(f"{source}: train images are {list(train_x.shape[1:])} but test images are "
                           f"{list(test_x.shape[1:])}")
    if len(train_y) == 0:
        raise DatasetError(f"{source}: no training samples")
    return Dataset(np.ascontiguousarray(train_x), train_y, np.ascontiguousarray(test_x), test_y, name,
                   class_names=tuple(class_names) if class_names is not None else None)


# --------------------------------------------------------------------------
# .npz arrays
# --------------------------------------------------------------------------

def _npz_layout(path, key, shape, layout):
    """'NCHW' or 'NHWC' for a 4-D image array: as stored in the file, else
    inferred from which axis has 1 or 3 entries (an error when both or neither)."""
    if layout is not None:
        return layout
    first, last = shape[1] in (1, 3), shape[3] in (1, 3)
    if first != last:
        return "NCHW" if first else "NHWC"
    raise DatasetError(f"{path}: {key} {list(shape)}: unknown layout (cannot tell NCHW from NHWC); "
                       f"add layout='NCHW' or 'NHWC' to the file")


def _npz_images(path, key, x, layout):
    """uint8 -> /255; float -> as is; [N,H,W] is one channel; 4-D by layout -> float32 NCHW."""
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise DatasetError(f"{path}: {key} has NaN or infinite values")
    else:
        raise DatasetError(f"{path}: {key} must be uint8 (0..255) or float images, got {x.dtype}")
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim != 4:
        raise DatasetError(f"{path}: {key} must be [N, H, W], [N, C, H, W] or [N, H, W, C], "
                           f"got {list(x.shape)}")
    if _npz_layout(path, key, x.shape, layout) == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    return x


def _npz_members(path):
    """Every array in the file, loaded without pickle, failures as DatasetError."""
    if os.path.isdir(path):
        raise DatasetError(f"{path}: is a directory; --data-dir for npz names the .npz file itself")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot read file: {e.strerror or e}") from None
    if head.startswith(b"\x93NUMPY"):
        raise DatasetError(f"{path}: a single .npy array, not an .npz archive of named arrays")
    if not head.startswith(b"PK"):
        raise DatasetError(f"{path}: not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise DatasetError(f"{path}: holds object arrays (pickled); store numbers, and class_names "
                               f"as np.array([...], dtype=str)") from None
        raise DatasetError(f"{path}: not a readable .npz file: {e}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise DatasetError(f"{path}: not a readable .npz file: {type(e).__name__}: {e}") from None


def _npz_text(path, z, key, allowed=None):
    """Optional string field: layout (one word) or class_names (a list)."""
    if key not in z:
        return None
    a = z[key]
    if a.dtype.kind not in "US":
        raise DatasetError(f"{path}: {key} must be strings, got {a.dtype}")
    values = [str(v.decode() if isinstance(v, bytes) else v) for v in a.reshape(-1)]
    if allowed is None:
        return values
    if a.ndim != 0 or values[0].upper() not in allowed:
        raise DatasetError(f"{path}: {key} must be one of {', '.join(allowed)}, got {values}")
    return values[0].upper()


def load_npz(path, train_count: Optional[int] = None, test_count: Optional[int] = None) -> Dataset:
    """Arrays from an .npz: x_train, y_train, optional x_test + y_test, layout, class_names.

    Without test arrays the file is split like the MNIST test set: the first
    train_count train, the last test_count (default TEST_PERCENT) test.  With
    them, counts keep the first N of each split.
    """
    path = os.fspath(path)
    z = _npz_members(path)
    missing = [k for k in ("x_train", "y_train") if k not in z]
    if missing or (("x_test" in z) != ("y_test" in z)):
        need = missing or [k for k in ("x_test", "y_test") if k not in z]
        raise DatasetError(f"{path}: missing array {', '.join(need)} (found: {', '.join(sorted(z)) or 'none'}; "
                           f"the format needs x_train, y_train, and optionally x_test with y_test)")
    unknown = sorted(set(z) - set(_NPZ_KEYS))
    if unknown:
        raise DatasetError(f"{path}: unknown array {', '.join(unknown)}; the format has {', '.join(_NPZ_KEYS)}")
    layout = _npz_text(path, z, "layout", _LAYOUTS)
    class_names = _npz_text(path, z, "class_names")
    x = _npz_images(path, "x_train", z["x_train"], layout)
    y = _check_labels(f"{path}: y_train", z["y_train"], len(x), class_names)
    if "x_test" in z:
        tx = _npz_images(path, "x_test", z["x_test"], layout)
        ty = _check_labels(f"{path}: y_test", z["y_test"], len(tx), class_names)
        x, y = _cap(path, x, y, train_count)
        tx, ty = _cap(path, tx, ty, test_count)
    else:
        x, y, tx, ty = _split_tail(path, x, y, train_count, test_count)
    return _finish("npz", x, y, tx, ty, class_names, path)


# --------------------------------------------------------------------------
# image folders
# --------------------------------------------------------------------------

def parse_image_size(text) -> Optional[Tuple[int, int]]:
    """'32' -> (32, 32); '28x32' -> (28, 32) as (height, width); None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
    if not m or int(m[1]) < 1 or (m[2] is not None and int(m[2]) < 1):
        raise DatasetError(f"image size {text!r}: expected N or HxW with positive integers, e.g. 32 or 28x28")
    return int(m[1]), int(m[2] or m[1])


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise DatasetError("folder: reading images needs Pillow: pip install 'ctrain[images]'") from None
    return Image


def _subdirs(path) -> List[str]:
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
    except OSError as e:
        raise DatasetError(f"{path}: cannot list image folder: {e.strerror or e}") from e


def _class_files(root, classes) -> List[Tuple[str, int]]:
    """(path, label) for every image file, classes in the given order, files sorted."""
    out = []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in os.listdir(folder)
                       if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DatasetError(f"{folder}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        out += [(os.path.join(folder, f), label) for f in files]
    return out


_GREY_MODES, _COLOUR_MODES = ("1", "L", "LA"), ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _decode(Image, path, size):
    """One image as uint8 [C, H, W], C = 1 (grey) or 3 (colour); alpha dropped."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _GREY_MODES:
                im = im.convert("L")
            elif im.mode in _COLOUR_MODES:
                im = im.convert("RGB")
            else:
                raise DatasetError(f"{path}: image mode {im.mode} (16-bit or float) is not supported; "
                                   f"save it as 8-bit grey or RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except OSError as e:
        raise DatasetError(f"{path}: cannot decode image: {e}") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _decode_all(files: Sequence[Tuple[str, int]], size) -> np.ndarray:
    """All images as float32 NCHW in [0, 1]; one size required (or `size`),
    grey images take three equal channels when any image is colour."""
    Image = _pil()
    images = [_decode(Image, p, size) for p, _ in files]
    first = images[0].shape[1:]
    for (p, _), a in zip(files, images):
        if a.shape[1:] != first:
            raise DatasetError(f"{p}: image is {a.shape[1]}x{a.shape[2]} but {files[0][0]} is "
                               f"{first[0]}x{first[1]} (HxW); make them one size or pass --image-size HxW")
    channels = max(a.shape[0] for a in images)
    x = np.empty((len(images), channels) + first, np.uint8)
    for i, a in enumerate(images):
        x[i] = a  # broadcasts grey to three channels
    return x.astype(np.float32) / np.float32(255.0)


def _mixed(files):
    """The files in FOLDER_ORDER_SEED's fixed order, so classes interleave before a split or cap."""
    order = np.random.default_rng(FOLDER_ORDER_SEED).permutation(len(files))
    return [files[i] for i in order]


def load_image_folder(root, train_count: Optional[int] = None, test_count: Optional[int] = None,
                      image_size=None) -> Dataset:
    """Images in one folder per class: root/<class>/<image>, class names = the
    sorted folder names (label i = the i-th).  With root/train/<class>/ and
    root/test/<class>/ those are the splits; otherwise all images, mixed in a
    fixed order, split like an npz file without test arrays.
    """
    root = os.fspath(root)
    size = parse_image_size(image_size)
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: image folder not found")
    top = _subdirs(root)
    if "train" in top and "test" in top:
        classes = _subdirs(os.path.join(root, "train"))
        test_classes = _subdirs(os.path.join(root, "test"))
        extra = sorted(set(test_classes) - set(classes))
        if extra:
            raise DatasetError(f"{os.path.join(root, 'test')}: class folder {extra[0]!r} is not in "
                               f"{os.path.join(root, 'train')}")
        if not classes:
            raise DatasetError(f"{os.path.join(root, 'train')}: no class folders")
        train_files = _mixed(_class_files(os.path.join(root, "train"), classes))
        test_files = _mixed([(p, classes.index(os.path.basename(os.path.dirname(p))))
                             for p, _ in _class_files(os.path.join(root, "test"), test_classes)])
        train_files = _cap(root, train_files, train_files, train_count)[0]
        test_files = _cap(root, test_files, test_files, test_count)[0]
        files = train_files + test_files
        n_train = len(train_files)
    else:
        classes = top
        if not classes:
            raise DatasetError(f"{root}: no class folders (expected {root}/<class name>/<images>)")
        files = _mixed(_class_files(root, classes))
        tr, _, te, _ = _split_tail(root, files, files, train_count, test_count)
        files, n_train = list(tr) + list(te), len(tr)
    if not files[:n_train]:
        raise DatasetError(f"{root}: no training images")
    x = _decode_all(files, size)
    y = np.array([label for _, label in files], np.int64)
    return _finish("folder", x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, root)
