"""IDX readers against hostile headers: sizes in Python integers (a product
beyond int64 is a clear size error, never a negative count), a bound on the
number of dimensions, and gzip inflated only as far as the header's declared
size (plus one byte to detect surplus), so memory follows the claim."""
import gzip
import tracemalloc
import zlib

import pytest

from ctrain.cli import main
from ctrain.data import IDX_MAX_DIMS, read_idx
from ctrain.errors import DatasetError


def header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


@pytest.mark.parametrize("gz", [False, True])
def test_dimension_product_beyond_int64(tmp_path, gz):
    dims = [0xFFFFFFFF] * 3  # product ~2^96 bytes; int64 arithmetic would wrap negative
    blob = header(dims) + b"\x00" * 16
    path = tmp_path / "big.idx"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(DatasetError) as e:
        read_idx(path)
    assert f"needs {0xFFFFFFFF ** 3} bytes, found 16" in str(e.value)


def test_too_many_dimensions(tmp_path):
    path = tmp_path / "many.idx"
    path.write_bytes(header([1] * 255) + b"\x00")
    with pytest.raises(DatasetError, match=f"declares 255 dimensions; at most {IDX_MAX_DIMS}"):
        read_idx(path)


def test_at_the_dimension_limit(tmp_path):
    path = tmp_path / "max.idx"
    path.write_bytes(header([1] * IDX_MAX_DIMS) + b"\x07")
    assert read_idx(path).shape == (1,) * IDX_MAX_DIMS


def _bomb(path, declared, inflated):
    """A gzip IDX file declaring `declared` bytes of data and inflating to `inflated`."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    with open(path, "wb") as f:
        f.write(comp.compress(header([declared])))
        zeros = bytes(1 << 20)
        for _ in range(inflated >> 20):
            f.write(comp.compress(zeros))
        f.write(comp.flush())


def test_gzip_bomb_is_read_only_as_far_as_declared(tmp_path):
    path = tmp_path / "bomb.gz"
    _bomb(path, 1000, 256 << 20)  # 256 KiB on disk, 256 MiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"trailing bytes after the IDX data \(shape \(1000,\) needs 1000"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_gzip_declaring_more_than_it_holds_stays_within_what_it_holds(tmp_path):
    path = tmp_path / "liar.gz"
    _bomb(path, 0xFFFFFFFF, 4 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=f"truncated IDX data: shape \\(4294967295,\\) needs 4294967295 bytes, "
                                               f"found {4 << 20}"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20, peak


def test_hostile_mnist_file_through_the_cli(tmp_path, capsys):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header([0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(header([5]) + bytes(5))
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("ctrain: error: ") and "truncated IDX data" in err and "-" not in err.split("needs")[1]
