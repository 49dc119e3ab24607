"""What ctrain keeps on disk between processes: where (cache_root), the lock
one process holds while it fills an entry (file_lock), and the tiling
search's results (TilingStore, used by ctrain.compiler.choose_tiling).

The tiling search costs every candidate tiling of every dense convolution
with the cycle model: seconds per model on a first compile (CNV at batch 64,
7.3 s for the Pynq-Z2), paid again by every new process (a CLI run, a
notebook, each worker of a sweep). The store keeps its answers in
<root>/tiling/<fingerprint>-<board>-<board hash>.json, where the
fingerprint hashes every Python source of the package and every overlay
header (the cycle model, the tiling rule, the board facts, the buffer
sizes): any change to what the search computes starts a new file, so an
answer is only ever reused by the code that computed it. Writes go to a
temporary file renamed into place under a lock, so concurrent processes
never see half a file and keep each other's entries. CTRAIN_TILING_CACHE=0
turns the store off (per-process caching only). Deleting the directory is
always safe.
"""
import contextlib
import hashlib
import json
import os
import tempfile
import threading

#: "0": no tiling store on disk (the search is then cached per process only)
TILING_ENV = "CTRAIN_TILING_CACHE"


def cache_root(kind):
    """Directory of the `kind` cache: the C-sim builds ("csim") are
    $CTRAIN_CACHE_DIR itself, any other kind its subdirectory `kind` (no
    C-sim entry has that name: those are <board>-<key>); without the
    variable ~/.cache/ctrain/<kind>."""
    env = os.environ.get("CTRAIN_CACHE_DIR")
    if env:
        return env if kind == "csim" else os.path.join(env, kind)
    return os.path.join(os.path.expanduser("~"), ".cache", "ctrain", kind)


@contextlib.contextmanager
def file_lock(path):
    """An exclusive lock on `path` while this process fills a cache entry: a
    second process wanting the same entry waits rather than computing it
    again. Without fcntl (Windows), or where the lock file cannot be opened,
    no lock: every cache write is a rename into place, so concurrent writers
    stay safe, only duplicated."""
    try:
        import fcntl
        f = open(path, "a")
    except (ImportError, OSError):
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


_FINGERPRINT = []


def source_fingerprint():
    """sha256 of the package's Python sources and the overlay headers (the
    ISA header, the HLS headers, the board configs), computed once per process."""
    if not _FINGERPRINT:
        from . import overlay_src
        pkg = os.path.dirname(os.path.abspath(__file__))
        root = overlay_src.overlay_dir()
        files = [os.path.join(pkg, n) for n in sorted(os.listdir(pkg)) if n.endswith(".py")]
        for sub in ("include", "hls", os.path.join("hls", "config")):
            d = os.path.join(root, sub)
            files += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".h")]
        h = hashlib.sha256()
        for path in files:
            with open(path, "rb") as fh:
                h.update(os.path.basename(path).encode() + b"\0" + fh.read() + b"\0")
        _FINGERPRINT.append(h.hexdigest()[:20])
    return _FINGERPRINT[0]


class TilingStore:
    """The tiling search's answers for one board (a perfmodel.Board): a dict
    loaded from disk once per process, new answers written back by save()."""

    _open = {}   # Board -> TilingStore, one per process

    @classmethod
    def for_board(cls, b):
        """The board's store, or None when the store is off (TILING_ENV) or
        the sources cannot be read."""
        if os.environ.get(TILING_ENV, "1") == "0":
            return None
        if b not in cls._open:
            try:
                name = (f"{source_fingerprint()}-{b.name}-"
                        f"{hashlib.sha256(repr(b).encode()).hexdigest()[:8]}.json")
            except OSError:
                return None
            cls._open[b] = cls(os.path.join(cache_root("tiling"), name))
        return cls._open[b]

    def __init__(self, path):
        self.path = path
        self.entries = self._read()
        self.new = {}
        self._lock = threading.Lock()   # compiles in several threads share the store

    def _read(self):
        try:
            with open(self.path) as fh:
                data = json.load(fh)
        except (OSError, ValueError):   # none yet, or unreadable: recompute
            return {}
        return {k: tuple(v) for k, v in data.items()
                if isinstance(v, list) and len(v) == 3 and all(type(x) is int for x in v)} \
            if isinstance(data, dict) else {}

    @staticmethod
    def key(tiling_key):
        """The text key of a compiler._tiling_key tuple."""
        return ";".join(f"{k}={int(v)}" for k, v in tiling_key)

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, value):
        value = tuple(int(x) for x in value)
        with self._lock:
            self.entries[key] = self.new[key] = value

    def save(self):
        """Merge the new answers into the file (what other processes added
        since it was read is kept); a cache that cannot be written is skipped."""
        with self._lock:
            new, self.new = self.new, {}
        if not new:
            return
        try:
            d = os.path.dirname(self.path)
            os.makedirs(d, exist_ok=True)
            with file_lock(self.path + ".lock"):
                merged = {**self._read(), **new}
                fd, tmp = tempfile.mkstemp(prefix=".tiling-", suffix=".json", dir=d)
                try:
                    with os.fdopen(fd, "w") as fh:
                        json.dump({k: list(v) for k, v in sorted(merged.items())}, fh)
                    os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide a shared cache
                    os.replace(tmp, self.path)
                except BaseException:
                    os.unlink(tmp)
                    raise
            with self._lock:
                self.entries.update(merged)
        except OSError:   # not written: these answers are searched again by the next process
            pass
