"""The port budget (ctrain.tools.ports): every pipelined loop of the HLS asks
each memory bank for no more accesses per iteration than its ports give, and
the pass finds the loops that do (synthetic kernels, and a defect put back
into a copy of the real sources)."""
import os
import shutil

import pytest

from ctrain import boards
from ctrain.hls_source import Sources
from ctrain.overlay_src import config_dir, hls_dir
from ctrain.tools import ports


@pytest.mark.parametrize("board", boards.BOARDS)
def test_every_pipeline_keeps_within_its_banks_ports(board):
    src = Sources(os.path.join(config_dir(), f"{board}.h"))
    assert [str(o) for o in ports.overuse(src)] == []


def _kernel(tmp_path, body, decl="int t[64];", pragmas=""):
    """One top function: array t (with `pragmas`), then `body`."""
    d = tmp_path / "hls"
    d.mkdir(exist_ok=True)
    (d / "k.cpp").write_text(
        "static inline int twice(const int a[64], int i) {\n#pragma HLS INLINE\n"
        "    return a[i] + a[i + 1];\n}\n"
        "static inline int twice_at(const int *a, int i) {\n#pragma HLS INLINE\n"
        "    return a[i] + a[i + 2];\n}\n"
        "void ctrain_top(int *o, int n, int b, int c) {\n"
        f"    {decl}\n{pragmas}\n{body}\n}}\n")
    src = Sources(os.path.join(config_dir(), "pynq_z2.h"), str(d))
    return ports.overuse(src)


def _loop(inner, ii=1):
    return ("    int s = 0;\nrun:\n    for (int i = 0; i < n; i++) {\n"
            f"#pragma HLS PIPELINE II={ii}\n{inner}\n    }}\n    o[0] = s;\n")


EIGHT = "        for (int k = 0; k < 8; k++) {\n#pragma HLS UNROLL\n            s += t[%s];\n        }\n"


def test_unrolled_reads_of_a_two_port_ram_are_found(tmp_path):
    found = _kernel(tmp_path, _loop(EIGHT % "i * 8 + k"))
    assert len(found) == 1
    o = found[0]
    assert (o.function, o.loop, o.array) == ("ctrain_top", "run", "ctrain_top:t")
    assert (o.reads, o.writes, o.ports) == (8, 0, 2)


def test_a_cyclic_partition_spreads_aligned_copies_but_not_unaligned_ones(tmp_path):
    cyc = "#pragma HLS ARRAY_PARTITION variable=t type=cyclic factor=8"
    assert _kernel(tmp_path, _loop(EIGHT % "i * 8 + k"), pragmas=cyc) == []
    # a base of unknown residue: every copy may take any bank
    found = _kernel(tmp_path, _loop(EIGHT % "b + k"), pragmas=cyc)
    assert [(o.reads, o.bank) for o in found] == [(8, (0,))]
    # a base known even: each copy may take any of its parity's four banks
    found = _kernel(tmp_path, _loop(EIGHT % "2 * b + k"), pragmas=cyc)
    assert [(o.reads, o.bank) for o in found] == [(4, (0,))]
    # a multiple of four: two copies each bank may serve
    assert _kernel(tmp_path, _loop(EIGHT % "4 * b + k"), pragmas=cyc) == []


def test_a_reshaped_word_is_one_access_and_the_ii_gives_slots(tmp_path):
    word = "#pragma HLS ARRAY_RESHAPE variable=t type=cyclic factor=8"
    assert _kernel(tmp_path, _loop(EIGHT % "i * 8 + k"), pragmas=word) == []
    assert _kernel(tmp_path, _loop(EIGHT % "i * 8 + k", ii=4)) == []
    assert len(_kernel(tmp_path, _loop(EIGHT % "i * 8 + k", ii=3))) == 1


def test_exclusive_arms_add_up_and_writes_have_one_port(tmp_path):
    """Arms of an if or a ?: are counted together (HLS shares a port between
    them only in one stage, which the source does not tell); a read at a
    selected address is one read."""
    arms = "        s += t[i];\n        if (c) s += t[c]; else s += t[c + 1];\n"
    assert [(o.reads, o.writes) for o in _kernel(tmp_path, _loop(arms))] == [(3, 0)]
    assert len(_kernel(tmp_path, _loop("        s += t[i] + (c ? t[b] : t[c]);\n"))) == 1
    assert _kernel(tmp_path, _loop("        s += t[i] + t[c ? b : c];\n")) == []
    # the same word read twice is one read
    assert _kernel(tmp_path, _loop("        s += t[i] * t[i] + t[b];\n")) == []
    # two writes: one write port (ram_2p), two with ram_t2p
    two = "        t[i] = s;\n        t[b + i] = 0;\n"
    assert [(o.reads, o.writes) for o in _kernel(tmp_path, _loop(two))] == [(0, 2)]
    t2p = "#pragma HLS BIND_STORAGE variable=t type=ram_t2p impl=bram"
    assert _kernel(tmp_path, _loop(two), pragmas=t2p) == []


def test_accesses_in_called_functions_count(tmp_path):
    # twice() reads a[i] and a[i + 1]: four reads with the loop's own two
    found = _kernel(tmp_path, _loop("        s += twice(t, i) + t[b] + t[c];\n"))
    assert [(o.reads, o.writes) for o in found] == [(4, 0)]
    # through a pointer parameter too
    found = _kernel(tmp_path, _loop("        s += twice_at(t, i) + t[b];\n"))
    assert [(o.reads, o.writes) for o in found] == [(3, 0)]
    # registers (a complete partition of a one-dimensional array) have no ports
    full = "#pragma HLS ARRAY_PARTITION variable=t type=complete"
    assert _kernel(tmp_path, _loop(EIGHT % "b + k"), pragmas=full) == []


def test_the_session_26_tap_finder_defect_is_found(tmp_path):
    """Put back what session 26 mended: the row-tile path's tap finder
    comparing a row's column starts from a RAM (its register copy tpk left unpartitioned)
    MAX_KK - 1 times per II=1 step, on the Pynq-Z2 (the board built with that path)."""
    dst = tmp_path / "hls"
    shutil.copytree(hls_dir(), dst, ignore=shutil.ignore_patterns("tb", "config"))
    path = dst / "sconv_rows.cpp"
    text = path.read_text()
    part = "#pragma HLS ARRAY_PARTITION variable=tpk type=complete\n"
    assert part in text
    path.write_text(text.replace(part, ""))
    src = Sources(os.path.join(config_dir(), "pynq_z2.h"), str(dst))
    found = [o for o in ports.overuse(src) if o.array.endswith(":tpk")]
    assert found and found[0].reads > 2


def test_a_channel_with_both_buffers_in_one_memory_gives_each_side_one_port(tmp_path):
    """--shared-channels: a DATAFLOW channel laid out as the resource
    estimate lays it out (its buffers one memory per bank) leaves the
    consumer one port, so two reads a cycle are over; a plain array keeps
    both ports, and so does the channel in the default reading."""
    d = tmp_path / "hls"
    d.mkdir()
    (d / "k.cpp").write_text(
        "static void fill(int t[64], int n) {\n#pragma HLS INLINE off\n"
        "fill:\n    for (int i = 0; i < n; i++) {\n#pragma HLS PIPELINE II=1\n        t[i] = i;\n    }\n}\n"
        "static void use(const int t[64], int *o, int n) {\n#pragma HLS INLINE off\n    int s = 0;\n"
        "use:\n    for (int i = 0; i < n; i++) {\n#pragma HLS PIPELINE II=1\n"
        "        s += t[i] + t[63 - i];\n    }\n    o[0] = s;\n}\n"
        "void ctrain_top(int *o, int n) {\nitems:\n    for (int k = 0; k < n; k++) {\n#pragma HLS DATAFLOW\n"
        "        int t[64];\n        fill(t, n);\n        use(t, o, n);\n    }\n}\n")
    src = Sources(os.path.join(config_dir(), "pynq_z2.h"), str(d))
    assert ports.overuse(src) == []
    found = ports.overuse(src, shared=True)
    assert [(o.function, o.loop, o.array, o.reads, o.ports) for o in found] == [
        ("use", "use", "ctrain_top:t", 2, 1)]


@pytest.mark.parametrize("board", ["aup_zu3", "zcu102"])
def test_the_dense_pairs_are_what_the_shared_channel_reading_puts_in_question(board):
    """What --shared-channels finds on the shipped sources: the dense unit's
    position and tap pairs read the column operand channel (conv_items:act)
    twice a step, as the error rows and mask (rowb) are, and the position
    path's step its row-bias channel (spp_pairs:rb): each a consumer's two
    reads of a ping-pong channel, none of them a write. docs/overlay.md,
    "Known limits", names what depends on it."""
    src = Sources(os.path.join(config_dir(), f"{board}.h"))
    found = ports.overuse(src, shared=True)
    assert ("pe_array", "pass_step", "conv_items:act") in {(o.function, o.loop, o.array) for o in found}
    assert all(o.writes == 0 and o.reads == 2 and o.ports == 1 for o in found)
    assert {o.array for o in found} <= {"conv_items:act", "conv_items:rowb", "spp_pairs:rb"}
