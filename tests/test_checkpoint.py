"""Checkpoints: exact round trip, atomic replace, and corruption always -> CheckpointError."""
import os
import zipfile

import numpy as np
import pytest

from ctrain import checkpoint
from ctrain.checkpoint import FORMAT_VERSION, load, save
from ctrain.errors import CheckpointError


def sample_arrays():
    rng = np.random.default_rng(0)
    return {
        "conv1.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv1.bias": np.zeros(4, np.float32),
        "fc.weight_q": rng.integers(-128, 128, (10, 16), dtype=np.int8),
        "step": np.array(1234, dtype=np.int64),
        "mask": rng.random(5) > 0.5,
        "big_endian": np.arange(3, dtype=">i4"),
        "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
        "empty": np.zeros((0, 7), np.float16),
    }


META = {"epoch": 3, "lr": 0.01, "dataset": "digits", "layers": [4, 10], "note": None}


def leftovers(directory, target):
    return sorted(p.name for p in directory.iterdir() if p.name != target.name)


def test_roundtrip_exact(tmp_path):
    path = tmp_path / "model.ckpt"
    arrays = sample_arrays()
    save(path, arrays, META)
    got, meta = load(path)
    assert meta == META
    assert set(got) == set(arrays)
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype, name
        assert got[name].shape == a.shape, name
        np.testing.assert_array_equal(got[name], a)
    assert leftovers(tmp_path, path) == []


def test_overwrite_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / "m.ckpt"
    save(path, {"w": np.ones(3)}, {"v": 1})
    os.chmod(path, 0o640)
    save(path, {"w": np.zeros(2)}, {"v": 2})
    arrays, meta = load(path)
    assert meta == {"v": 2} and arrays["w"].tolist() == [0.0, 0.0]
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_members_load_without_pickle(tmp_path):
    path = tmp_path / "m.ckpt"
    save(path, {"w": np.ones(3)}, {"a": "b"})
    with np.load(path, allow_pickle=False) as z:
        assert "w" in z.files and int(z["__ctrain_version__"]) == FORMAT_VERSION


@pytest.mark.parametrize("fail_at", ["savez", "replace"])
def test_failed_write_keeps_old_checkpoint(tmp_path, monkeypatch, fail_at):
    path = tmp_path / "m.ckpt"
    save(path, {"w": np.arange(4.0)}, {"epoch": 1})
    before = path.read_bytes()

    def partial_savez(f, **kw):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    def failing_replace(src, dst):
        raise OSError("simulated crash before rename")

    if fail_at == "savez":
        monkeypatch.setattr(checkpoint.np, "savez", partial_savez)
    else:
        monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    with pytest.raises(OSError):
        save(path, {"w": np.zeros(4)}, {"epoch": 2})
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert load(path)[1] == {"epoch": 1}
    assert leftovers(tmp_path, path) == []


def test_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "new.ckpt"
    def failing_replace(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(checkpoint.os, "replace", failing_replace)
    with pytest.raises(OSError):
        save(path, {"w": np.zeros(1)}, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "m.ckpt"
    save(path, sample_arrays(), META)
    data = path.read_bytes()
    path.write_bytes(data[: max(4, int(len(data) * keep))])
    with pytest.raises(CheckpointError) as e:
        load(path)
    assert str(path) in str(e.value)
    assert "truncated" in str(e.value) or "corrupt" in str(e.value)


def test_every_flipped_byte_is_detected(tmp_path):
    """Flipping any single byte must give CheckpointError (or, where zip ignores the
    byte, e.g. a timestamp, load identical content) -- never another exception."""
    path = tmp_path / "m.ckpt"
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save(path, arrays, {"k": 1})
    good = path.read_bytes()
    errors = 0
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x5A
        path.write_bytes(bytes(bad))
        try:
            got, meta = load(path)
        except CheckpointError as e:
            assert str(path) in str(e)
            errors += 1
            continue
        np.testing.assert_array_equal(got["w"], arrays["w"])
        assert meta == {"k": 1}
    assert errors > len(good) // 2


def test_flipped_data_byte(tmp_path):
    path = tmp_path / "m.ckpt"
    w = np.full(64, 7.0, np.float32)
    save(path, {"w": w}, {})
    data = bytearray(path.read_bytes())
    pos = data.index(w.tobytes()) + 10
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt") as e:
        load(path)
    assert str(path) in str(e.value)


def rewrite(path, **members):
    """Write a raw npz (bypassing `save`) to forge damaged checkpoints."""
    with open(path, "wb") as f:
        np.savez(f, **members)


def good_members(tmp_path):
    path = tmp_path / "src.ckpt"
    save(path, {"w": np.arange(3.0)}, {"a": 1})
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_digest_mismatch(tmp_path):
    members = good_members(tmp_path)
    members["w"] = members["w"] + 1  # valid zip, wrong content
    path = tmp_path / "m.ckpt"
    rewrite(path, **members)
    with pytest.raises(CheckpointError, match="digest mismatch") as e:
        load(path)
    assert str(path) in str(e.value)


def test_dropped_array_breaks_digest(tmp_path):
    members = good_members(tmp_path)
    del members["w"]
    path = tmp_path / "m.ckpt"
    rewrite(path, **members)
    with pytest.raises(CheckpointError, match="digest mismatch"):
        load(path)


@pytest.mark.parametrize("drop", ["__ctrain_meta__", "__ctrain_digest__", "__ctrain_version__"])
def test_missing_reserved_key(tmp_path, drop):
    members = good_members(tmp_path)
    del members[drop]
    path = tmp_path / "m.ckpt"
    rewrite(path, **members)
    with pytest.raises(CheckpointError, match=f"missing {drop}"):
        load(path)


def test_plain_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    rewrite(path, w=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a CTrain checkpoint"):
        load(path)


def test_wrong_version(tmp_path):
    members = good_members(tmp_path)
    members["__ctrain_version__"] = np.array(FORMAT_VERSION + 1)
    path = tmp_path / "m.ckpt"
    rewrite(path, **members)
    with pytest.raises(CheckpointError, match="unsupported checkpoint format version 2"):
        load(path)


@pytest.mark.parametrize("content", [b"", b"hello world", b"\x93NUMPY not an npz",
                                     b"PK\x03\x04garbage"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load(path)
    assert str(path) in str(e.value)


def test_zip_without_npy_members(tmp_path):
    path = tmp_path / "m.ckpt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="not a CTrain checkpoint"):
        load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load(tmp_path / "absent.ckpt")


def test_save_rejects_unloadable_input(tmp_path):
    path = tmp_path / "m.ckpt"
    with pytest.raises(CheckpointError, match="object dtype"):
        save(path, {"w": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(CheckpointError, match="invalid array name"):
        save(path, {"__ctrain_meta__": np.zeros(1)}, {})
    with pytest.raises(CheckpointError, match="JSON"):
        save(path, {"w": np.zeros(1)}, {"bad": object()})
    assert not path.exists()
