"""Work split into lanes over a persistent thread pool: the numpy engine's and
the float model's way to keep every core busy without a BLAS thread pool
(OpenBLAS's spinning threads collapse when other processes hold the cores).

A lane is a contiguous slice [a, b) of an axis whose slices are independent
(images of a batch, channels); numpy's GEMMs, copies and ufuncs release the
GIL, so lanes run on separate cores while each calls single-threaded BLAS."""
import os
from concurrent.futures import ThreadPoolExecutor, wait


def cpus():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Lanes:
    """Runs fn(k, a, b) over up to `threads` lanes k splitting range(total)."""

    def __init__(self, threads=None):
        self.threads = threads or cpus()
        self._pool = None
        self._size = 0

    def run(self, fn, total, split=True):
        """[fn(k, a, b)] in lane order; lane 0 runs on the calling thread, the
        others on the pool, and all have finished on return (an exception is
        raised only after every lane stopped writing). One lane when `split`
        is False or there is one thread."""
        parts = min(self.threads, total) if split else 1
        if parts <= 1:
            return [fn(0, 0, total)]
        if self._pool is None or self._size != parts - 1:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="ctrain-lane")
            self._size = parts - 1
        bounds = [total * k // parts for k in range(parts + 1)]
        try:
            futures = [self._pool.submit(fn, k, bounds[k], bounds[k + 1]) for k in range(1, parts)]
            try:
                first = fn(0, bounds[0], bounds[1])
            finally:
                wait(futures)
        except KeyboardInterrupt:
            # Ctrl-C (SIGTERM in the CLI) may land while submit starts a worker,
            # after its start and before concurrent.futures registers it for the
            # interpreter's exit, which then joins it while it waits on its queue
            # for ever: shutting the pool down wakes every worker of it; the next
            # run makes a new one
            self._pool.shutdown()
            self._pool = None
            raise
        return [first] + [f.result() for f in futures]


_BLAS = None


def _blas_libs():
    """threadpoolctl's controllers of the loaded BLAS libraries (looked up once)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or failing: leave BLAS alone
            _BLAS = []
    return _BLAS


def set_blas_threads(n):
    """Set every loaded BLAS library to `n` threads (None: leave them alone);
    returns a function restoring the previous counts. Lanes call BLAS with one
    thread each: a BLAS pool inside every lane would oversubscribe the cores."""
    changed = []
    if n is not None:
        for lib in _blas_libs():
            before = lib.num_threads
            if before != n:
                lib.set_num_threads(n)
                changed.append((lib, before))

    def restore():
        for lib, before in changed:
            lib.set_num_threads(before)
    return restore
