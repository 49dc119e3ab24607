"""ctrain.lanes: contiguous slices covering the range, results in lane order,
an exception raised only once every lane stopped."""
import threading
import time

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
