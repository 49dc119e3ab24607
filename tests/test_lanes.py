"""ctrain.lanes: contiguous slices covering the range, results in lane order,
an exception raised only once every lane stopped."""
import threading
import time

import numpy as np
import pytest

from ctrain.lanes import Lanes


def test_lanes_cover_the_range_in_order_lane_0_on_the_caller():
    seen = {}
    out = Lanes(3).run(lambda k, a, b: seen.setdefault(k, threading.get_ident()) and (k, a, b), 10)
    assert out == [(0, 0, 3), (1, 3, 6), (2, 6, 10)]
    me = threading.get_ident()
    assert seen[0] == me and seen[1] != me and seen[2] != me


def test_one_lane_when_not_split_or_too_little_to_split():
    assert Lanes(4).run(lambda k, a, b: (k, a, b), 10, split=False) == [(0, 0, 10)]
    assert Lanes(4).run(lambda k, a, b: (k, a, b), 2) == [(0, 0, 1), (1, 1, 2)]


def test_an_error_waits_for_the_other_lanes():
    done = []

    def fn(k, a, b):
        if k == 0:
            raise ValueError("lane 0")
        time.sleep(0.05)
        done.append(k)
    with pytest.raises(ValueError, match="lane 0"):
        Lanes(2).run(fn, 4)
    assert done == [1]


def test_ctrl_c_while_a_worker_starts_leaves_no_worker_waiting(monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI turns into it) landing while the pool
    starts a worker, after its start and before concurrent.futures registers
    it for the interpreter's exit: that worker would wait on its queue for
    ever and the process hang at exit (test_interrupt's rare hang; gdb showed
    the main thread in threading._shutdown, a ctrain-lane worker in its
    queue's get). The pool is shut down on the way out, which wakes it."""
    start = threading.Thread.start
    started = []

    def start_then_interrupt(self):
        start(self)
        if self.name.startswith("ctrain-lane") and not started:
            started.append(self)
            raise KeyboardInterrupt
    monkeypatch.setattr(threading.Thread, "start", start_then_interrupt)
    lanes = Lanes(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            lanes.run(lambda k, a, b: k, 4)
        started[0].join(timeout=10)
        assert not started[0].is_alive(), "a lane worker still waits on its queue"
        monkeypatch.undo()
        assert lanes.run(lambda k, a, b: (k, a, b), 4) == [(0, 0, 2), (1, 2, 4)]   # a fresh pool
    finally:
        if started and started[0].is_alive():
            started[0]._args[1].put(None)   # wake it, so this test cannot hang the suite's exit


def test_float_training_is_the_same_on_any_number_of_lanes():
    """The float warm-up's bits do not depend on the cores: weight gradients
    are summed per chunk of floatnet.WG_CHUNK images in chunk order, whatever
    the lane count (a batch of 40: two full chunks and a short one; ResNet-20
    has maps under SMALL_MAP and over it, batch norm and residual adds)."""
    from ctrain.floatnet import FloatNet
    from ctrain.model import build_model
    shape = (3, 16, 16)
    m = build_model("resnet20", shape, 10)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40,) + shape).astype(np.float32)
    y = rng.integers(0, 10, 40)
    runs = []
    for threads in (1, 2, 3):
        net = FloatNet(m, m.init_params(np.random.default_rng(0)))
        net.lanes = Lanes(threads)
        losses = [net.train_batch(x, y, 0.05, 0.9, 5e-4)[0] for _ in range(2)]
        runs.append((losses, b"".join(p["w"].tobytes() for p in net.params)))
    assert runs[1] == runs[0] and runs[2] == runs[0]
