"""The tiling search's store on disk (ctrain.disk_cache.TilingStore): a
second process compiles the same program without searching, a corrupt or
foreign file is recomputed, a source change starts a new file, and the
store can be turned off."""
import json
import os
import shutil

import pytest

from ctrain import compiler, disk_cache, perfmodel
from ctrain.model import lenet5


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A fresh cache root and no store or search result left in this process."""
    monkeypatch.setenv("CTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(disk_cache.TILING_ENV, raising=False)
    monkeypatch.setattr(disk_cache.TilingStore, "_open", {})
    compiler._choose_tiling.cache_clear()
    yield tmp_path / "tiling"
    compiler._choose_tiling.cache_clear()


def _new_process(monkeypatch):
    """What a new process starts with: nothing in memory."""
    monkeypatch.setattr(disk_cache.TilingStore, "_open", {})
    compiler._choose_tiling.cache_clear()


def _files(d):
    return sorted(p for p in os.listdir(d) if p.endswith(".json"))


def test_a_new_process_reads_the_choices_instead_of_searching(store_dir, monkeypatch):
    first = compiler.compile_model(lenet5(), 16, board="zcu104").insns
    searched = compiler._choose_tiling.cache_info().misses
    [name] = _files(store_dir)
    b = perfmodel.board("zcu104")
    assert name.startswith(f"{disk_cache.source_fingerprint()}-zcu104-") and searched > 0
    entries = json.loads((store_dir / name).read_text())
    assert len(entries) == searched and all(len(v) == 3 for v in entries.values())
    _new_process(monkeypatch)
    again = compiler.compile_model(lenet5(), 16, board="zcu104").insns
    assert compiler._choose_tiling.cache_info().misses == 0   # no search at all
    assert again.tobytes() == first.tobytes()
    # what the store answers is what the search answers
    store = disk_cache.TilingStore.for_board(b)
    for text, value in entries.items():
        key = tuple((k, int(v)) for k, v in (kv.split("=") for kv in text.split(";")))
        assert store.get(text) == tuple(value) == compiler._choose_tiling(key, b)


def test_a_corrupt_file_is_searched_again_and_rewritten(store_dir, monkeypatch):
    want = compiler.compile_model(lenet5(), 8, board="pynq_z2").insns
    [name] = _files(store_dir)
    (store_dir / name).write_text('{"half a file')
    _new_process(monkeypatch)
    assert compiler.compile_model(lenet5(), 8, board="pynq_z2").insns.tobytes() == want.tobytes()
    assert compiler._choose_tiling.cache_info().misses > 0
    assert json.loads((store_dir / name).read_text())   # whole again
    assert not [p for p in os.listdir(store_dir) if p.startswith(".tiling-")]   # no temporary left


def test_processes_keep_each_others_entries(store_dir, monkeypatch):
    """Each writer merges into what is on disk when it writes."""
    compiler.compile_model(lenet5(), 8, board="pynq_z2")
    [name] = _files(store_dir)
    one = json.loads((store_dir / name).read_text())
    _new_process(monkeypatch)
    stale = disk_cache.TilingStore.for_board(perfmodel.board("pynq_z2"))   # read before the other's write
    (store_dir / name).write_text(json.dumps({**one, "other=1": [1, 2, 0]}))
    stale.put("mine=1", (3, 4, 0))
    stale.save()
    merged = json.loads((store_dir / name).read_text())
    assert merged == {**one, "other=1": [1, 2, 0], "mine=1": [3, 4, 0]}


def test_a_source_change_starts_a_new_file(tmp_path, monkeypatch):
    """The fingerprint covers the overlay headers (board facts, buffer
    sizes, the cycle model's constants) and the package's Python."""
    from ctrain import overlay_src
    root = overlay_src.overlay_dir()
    copy = tmp_path / "overlay"
    for sub in ("include", "hls"):
        shutil.copytree(os.path.join(root, sub), copy / sub)
    monkeypatch.setattr(overlay_src, "overlay_dir", lambda: str(copy))
    monkeypatch.setattr(disk_cache, "_FINGERPRINT", [])
    same = disk_cache.source_fingerprint()
    assert same == disk_cache._FINGERPRINT[0]
    header = copy / "hls" / "config" / "zcu104.h"
    header.write_text(header.read_text() + "\n// changed\n")
    monkeypatch.setattr(disk_cache, "_FINGERPRINT", [])
    assert disk_cache.source_fingerprint() != same


def test_the_store_can_be_turned_off(store_dir, monkeypatch):
    monkeypatch.setenv(disk_cache.TILING_ENV, "0")
    compiler.compile_model(lenet5(), 8, board="pynq_z2")
    assert not store_dir.exists()
    assert disk_cache.TilingStore.for_board(perfmodel.board("pynq_z2")) is None


def test_cache_roots(monkeypatch):
    monkeypatch.setenv("CTRAIN_CACHE_DIR", "/x/y")
    assert (disk_cache.cache_root("csim"), disk_cache.cache_root("tiling")) == ("/x/y", "/x/y/tiling")
    monkeypatch.delenv("CTRAIN_CACHE_DIR")
    home = os.path.expanduser("~")
    assert disk_cache.cache_root("tiling") == os.path.join(home, ".cache", "ctrain", "tiling")
    assert disk_cache.cache_root("csim") == os.path.join(home, ".cache", "ctrain", "csim")
