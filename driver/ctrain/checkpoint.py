"""Checkpoints: named numpy arrays plus JSON metadata in one .npz file.

Why this shape:

* ``.npz`` loads with ``allow_pickle=False``, so opening a checkpoint never
  executes code from the file.
* A SHA-256 digest over every array (name, dtype, shape, bytes) and the meta
  detects corruption the zip CRCs miss (or a hand-edited file).
* Writes are atomic (temp file in the same directory, fsync, ``os.replace``,
  fsync of the directory): a crash mid-save leaves the previous checkpoint
  intact instead of a half-written one.  The temp file is named
  ``.<name>.<pid>.<random>.tmp``; SIGINT and SIGTERM are held off while it
  exists (delivered right after the save), and a temp file left by a process
  that no longer runs (SIGKILL, power loss) is removed by the next save.
* A path is only ever written over when it already holds a CTrain checkpoint
  (`check_target`), so a mistyped path cannot destroy an unrelated file.
* `expect_array` and `expect_meta` check what a reader needs (names, shapes,
  dtypes, ranges), since a digest only proves the writer meant it.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import tempfile
import threading
import zipfile
import zlib
from typing import Dict, Mapping, Tuple

import numpy as np

from .errors import CheckpointError

__all__ = ["FORMAT_VERSION", "save", "load", "check_target", "expect_array", "expect_meta"]

FORMAT_VERSION = 1

# Reserved member names; user array names may not start with this prefix.
_PREFIX = "__ctrain_"
_VERSION_KEY = _PREFIX + "version__"
_META_KEY = _PREFIX + "meta__"
_DIGEST_KEY = _PREFIX + "digest__"


def _digest(arrays: Mapping[str, np.ndarray], meta_bytes: bytes, version: int) -> str:
    """SHA-256 over the version, every array (sorted by name) and the meta JSON.

    Each field is length-framed so that moving bytes between fields changes it.
    """
    h = hashlib.sha256()

    def field(b: bytes) -> None:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    field(str(version).encode())
    for name in sorted(arrays):
        a = arrays[name]
        field(name.encode("utf-8"))
        field(repr(np.lib.format.dtype_to_descr(a.dtype)).encode())
        field(repr(tuple(a.shape)).encode())
        field(a.tobytes(order="C"))
    field(meta_bytes)
    return h.hexdigest()


def _check_arrays(path: str, arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Reject what could not be loaded back safely (pickled objects, reserved names)."""
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name.startswith(_PREFIX):
            raise CheckpointError(f"{path}: invalid array name {name!r} "
                                  f"(need a non-empty str not starting with {_PREFIX!r})")
        a = np.asarray(value)
        if a.dtype.hasobject:
            raise CheckpointError(
                f"{path}: array {name!r} has object dtype, which cannot be loaded without pickle")
        out[name] = a
    return out


def _encode_meta(path: str, meta: Mapping) -> bytes:
    try:
        return json.dumps(dict(meta), sort_keys=True, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: meta is not JSON-serialisable: {e}") from e


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable; best effort where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # saves are not concurrent within a process: ours is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _remove_stale_temps(directory: str, base: str) -> None:
    """Temp files of earlier saves to `base` whose writer is gone."""
    pattern = re.compile(r"^\." + re.escape(base) + r"\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp$")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m and not (m.group(1) and _pid_alive(int(m.group(1)))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


@contextlib.contextmanager
def _signals_deferred():
    """Hold SIGINT/SIGTERM until the block ends, then deliver them, so an
    interrupt never lands inside zipfile/np.savez (whose half-closed objects
    print tracebacks from __del__) and the temp file is always removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: cannot be restored, leave it
            continue
        previous[sig] = handler
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)


def _write_atomic(path: str, payload: Dict[str, np.ndarray]) -> None:
    """Write the npz to a temp file beside `path`, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    with _signals_deferred():
        _remove_stale_temps(directory, base)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.{os.getpid()}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **payload)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _target_mode(path))
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(directory)


def _target_mode(path: str) -> int:
    """Keep an existing checkpoint's permissions; mkstemp's 0600 is too strict otherwise."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o644


def save(path, arrays: Mapping[str, np.ndarray], meta: Mapping) -> None:
    """Atomically write `arrays` and JSON `meta` to `path` (an .npz file).

    Raises CheckpointError for invalid names/dtypes or non-JSON meta before
    touching the disk; I/O errors propagate as OSError, with the old file intact.
    """
    path = os.fspath(path)
    checked = _check_arrays(path, arrays)
    meta_bytes = _encode_meta(path, meta)
    payload = dict(checked)
    payload[_VERSION_KEY] = np.array(FORMAT_VERSION, dtype=np.int64)
    payload[_META_KEY] = np.frombuffer(meta_bytes, dtype=np.uint8)
    payload[_DIGEST_KEY] = np.frombuffer(
        _digest(checked, meta_bytes, FORMAT_VERSION).encode("ascii"), dtype=np.uint8)
    _write_atomic(path, payload)


# Everything numpy/zipfile may raise on a damaged archive or member.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError,
                KeyError, IndexError, NotImplementedError, UnicodeDecodeError)


def _read_members(path: str) -> Dict[str, np.ndarray]:
    """All members of the npz, with any low-level failure turned into CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint: {e.strerror or e}") from e
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{path}: not a checkpoint (not an .npz/zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except _READ_ERRORS as e:
        raise CheckpointError(
            f"{path}: truncated or corrupt checkpoint archive: {type(e).__name__}: {e}") from e


def _split_reserved(path: str, members: Dict[str, np.ndarray]) -> Tuple[int, bytes, str]:
    """Version, meta bytes and stored digest; checks presence and version first."""
    missing = [k for k in (_VERSION_KEY, _META_KEY, _DIGEST_KEY) if k not in members]
    if missing:
        raise CheckpointError(
            f"{path}: not a CTrain checkpoint: missing {', '.join(missing)}")
    version_arr = members.pop(_VERSION_KEY)
    if version_arr.shape != () or version_arr.dtype.kind not in "iu":
        raise CheckpointError(f"{path}: malformed format-version field")
    version = int(version_arr)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format version {version} "
            f"(this CTrain reads version {FORMAT_VERSION})")
    meta_arr, digest_arr = members.pop(_META_KEY), members.pop(_DIGEST_KEY)
    if meta_arr.dtype != np.uint8 or digest_arr.dtype != np.uint8:
        raise CheckpointError(f"{path}: malformed meta/digest fields")
    try:
        digest = digest_arr.tobytes().decode("ascii")
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path}: malformed digest field") from e
    return version, meta_arr.tobytes(), digest


def load(path) -> Tuple[Dict[str, np.ndarray], dict]:
    """Read a checkpoint written by `save`, verifying version and digest.

    Returns (arrays, meta).  Every failure -- missing, truncated, not a zip,
    not ours, wrong version, digest mismatch -- is a CheckpointError naming
    the file, so callers need only one except clause.
    """
    path = os.fspath(path)
    members = _read_members(path)
    version, meta_bytes, stored = _split_reserved(path, members)
    actual = _digest(members, meta_bytes, version)
    if not hmac.compare_digest(actual, stored):
        raise CheckpointError(
            f"{path}: checkpoint digest mismatch (contents corrupted or modified): "
            f"stored {stored[:16]}..., computed {actual[:16]}...")
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: meta is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: meta is not a JSON object")
    return members, meta


def check_target(path, what="checkpoint") -> None:
    """Raise CheckpointError unless `path` can be written by `save` without
    harm: its directory exists and is writable, and the path is either free
    or already a CTrain checkpoint (anything else is never overwritten)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: {what} path is a directory; give a file name")
    if not os.path.isdir(directory):
        raise CheckpointError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"{path}: directory {directory} is not writable")
    if os.path.lexists(path):
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: exists and is not a regular file; refusing to overwrite it")
        try:
            load(path)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: exists and is not a CTrain checkpoint (reading it: {str(e).split(': ', 1)[-1]}); "
                                  "refusing to overwrite it: remove it or choose another path") from None


def expect_array(path, arrays: Mapping[str, np.ndarray], name: str, shape, dtype, what: str = "",
                 check=None, rule: str = "") -> np.ndarray:
    """arrays[name] with exactly `shape` and `dtype`, and `check(array)` true;
    CheckpointError naming the array and what was expected otherwise."""
    label = f"{path}: array {name!r}" + (f" ({what})" if what else "")
    if name not in arrays:
        raise CheckpointError(f"{label} is missing")
    a = arrays[name]
    if tuple(a.shape) != tuple(shape) or a.dtype != np.dtype(dtype):
        raise CheckpointError(f"{label} is {a.dtype} {list(a.shape)}, expected {np.dtype(dtype)} {list(shape)}")
    if check is not None and not check(a):
        raise CheckpointError(f"{label}: values out of range, expected {rule}")
    return a


def expect_meta(path, meta: Mapping, key: str, check, rule: str):
    """meta[key] when present and `check(value)` holds; CheckpointError otherwise."""
    if key not in meta:
        raise CheckpointError(f"{path}: metadata field {key!r} is missing")
    value = meta[key]
    if not check(value):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise CheckpointError(f"{path}: metadata field {key!r} is {shown}, expected {rule}")
    return value
