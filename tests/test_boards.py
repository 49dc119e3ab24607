"""The one board list (ctrain.boards): read from overlay/hls/config, reachable
from board.h, the names PYNQ reports, and the places that use it."""
import os
import re
import shutil
import subprocess

import pytest

from ctrain import boards, cli, overlay_files
from ctrain.overlay_src import config_dir

from conftest import csim_or_skip

HEADERS = sorted(f[:-2] for f in os.listdir(config_dir()) if f.endswith(".h") and f != "board.h")


def test_every_config_header_is_a_board_in_chip_order():
    assert sorted(boards.BOARDS) == HEADERS
    assert {"pynq_z2", "kv260", "aup_zu3", "zcu104", "zcu102"} <= set(boards.BOARDS)
    dsp = [boards.get(b).chip_dsp for b in boards.BOARDS]
    assert dsp == sorted(dsp)


def test_board_facts():
    kv = boards.get("kv260")
    assert (kv.part, kv.chip_dsp, kv.chip_bram36, kv.chip_uram) == ("xck26-sfvc784-2LV-c", 1248, 144, 64)
    assert (kv.pynq_name, kv.ps, kv.hp_port, kv.ddr_beat) == ("KV260", "zynqmp", "S_AXI_HP0_FPD", 16)
    zu3 = boards.get("aup_zu3")
    assert (zu3.part, zu3.chip_dsp, zu3.chip_bram36, zu3.chip_uram) == ("xczu3eg-sfvc784-2-e", 360, 216, 0)
    z2 = boards.get("pynq_z2")
    assert (z2.ps, z2.hp_port, z2.ddr_beat, z2.dsp_kind) == ("zynq7", "S_AXI_HP0", 8, "DSP48E1")
    for name in boards.BOARDS:
        b = boards.get(name)
        assert b.pe_lanes * b.pe_rows * b.pe_cols == b.macs > 0 and b.ddr_gbps > 0 and b.clock_mhz > 0
        assert b.dsp_kind == ("DSP48E1" if b.ps == "zynq7" else "DSP48E2")


@pytest.mark.parametrize("pynq, name", [("Pynq-Z2", "pynq_z2"), ("KV260", "kv260"), ("kv260", "kv260"),
                                        ("AUP-ZU3", "aup_zu3"), ("AUP-ZU3_8GB", "aup_zu3"),
                                        ("ZCU104", "zcu104"), ("ZCU102", "zcu102"),
                                        ("Ultra96V2", "ultra96"), ("Ultra96", "ultra96")])
def test_by_pynq_name(pynq, name):
    assert boards.by_pynq_name(pynq).name == name


def test_unknown_board_is_one_line_listing_the_valid_ones():
    with pytest.raises(boards.UnknownBoard) as err:
        boards.get("zcu999")
    msg = str(err.value)
    assert "\n" not in msg and "zcu999" in msg and all(b in msg for b in boards.BOARDS)
    with pytest.raises(boards.UnknownBoard, match="KV260"):
        boards.by_pynq_name("RFSoC4x2")


def test_a_header_missing_a_fact_is_named(tmp_path):
    src = os.path.join(config_dir(), "kv260.h")
    text = re.sub(r"#define CTRAIN_CHIP_URAM \d+\n", "", open(src).read())
    (tmp_path / "kv260.h").write_text(text)
    with pytest.raises(boards.CTrainError, match="CTRAIN_CHIP_URAM"):
        boards.load(str(tmp_path / "kv260.h"))


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs the C preprocessor")
@pytest.mark.parametrize("name", HEADERS)
def test_board_h_selects_each_header(name):
    out = subprocess.run(["g++", "-E", "-dM", "-x", "c++", f"-DCTRAIN_BOARD_{name.upper()}",
                          "-I", config_dir(), os.path.join(config_dir(), "board.h")],
                         capture_output=True, text=True, check=True).stdout
    assert f'#define CTRAIN_BOARD_NAME "{name}"' in out


def test_overlay_search_maps_pynq_names(monkeypatch):
    monkeypatch.delenv(overlay_files.ENV_BOARD, raising=False)
    monkeypatch.setenv("BOARD", "KV260")
    assert overlay_files.board_name() == "kv260"
    monkeypatch.setenv("BOARD", "Pynq-Z2")
    assert overlay_files.board_name() == "pynq_z2"
    assert overlay_files.board_name("AUP-ZU3") == "aup_zu3"


def test_cli_board_choices_are_the_board_list(capsys):
    assert cli.main(["train", "--board", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and all(repr(b) in err or b in err for b in boards.BOARDS)


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
@pytest.mark.parametrize("name", HEADERS)
def test_tcl_flows_read_the_same_facts(name):
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "overlay")
    script = ("source [file join $::env(CTRAIN_ROOT) scripts board.tcl]\n"
              "puts [list $part $board_part $ps $hp_port $clock_mhz $ddr_beat $board_define "
              "$ddr_ports [expr {$hp_port1 eq {} ? {-} : $hp_port1}]]\n")
    out = subprocess.run(["tclsh"], input=script, capture_output=True, text=True, check=True,
                         env={**os.environ, "CTRAIN_BOARD": name, "CTRAIN_ROOT": root}).stdout.split()
    b = boards.get(name)
    assert out == [b.part, b.board_part, b.ps, b.hp_port, str(b.clock_mhz), str(b.ddr_beat),
                   f"CTRAIN_BOARD_{name.upper()}", str(b.ddr_ports), b.hp_port1 or "-"]


@pytest.mark.slow  # a C-sim build per board (shared with test_perfmodel's)
@pytest.mark.after_builds   # every board at once: last, when conftest's worker has built them
@pytest.mark.parametrize("name", HEADERS)
def test_every_configuration_computes_what_numpy_computes(name):
    """The PE array and buffers are configuration constants: every board's
    build gives the numpy engine's bytes on every opcode (with the
    testbench, run on one board in test_overlay_check, the check that a
    board's compiled sources compute right)."""
    np = pytest.importorskip("numpy")
    from ctrain.engine.numpy import NumpyEngine
    from ctrain.tools.random_insn import OPS, random_case
    engine = csim_or_skip(name)
    b = boards.get(name)
    assert (engine.pe_rows, engine.pe_cols, engine.chunk) == (b.pe_rows, b.pe_cols, b.chunk)
    ref, rng = NumpyEngine(board=name), np.random.default_rng(10)
    for op in OPS:
        for _ in range(3):
            case = random_case(rng, op=op, board=name)
            mine, theirs = case.ddr.copy(), case.ddr.copy()
            assert engine.run(mine, *case.run_args()) == ref.run(theirs, *case.run_args()), op
            assert np.array_equal(mine, theirs), op


@pytest.mark.slow  # a C-sim build per board (shared with the test above)
@pytest.mark.after_builds
@pytest.mark.parametrize("name", HEADERS)
def test_verify_checks_the_board_it_is_given(name):
    """verify(board=B) runs B's C-sim build against the numpy engine for B,
    on cases drawn for B's buffers: every case bit-exact."""
    from ctrain.tools.cross_check import format_report, verify
    engine = csim_or_skip(name)
    assert engine.board == name
    report = verify("csim", 24, 7, progress=False, faults=6, board=name)
    assert report["board"] == name and report["mismatches"] == 0, format_report(report)
    assert sum(r["cases"] for r in report["per_op"].values()) == 24
    assert sum(r["cases"] for r in report["per_fault"].values()) == 6
    assert format_report(report).startswith(f"verify csim on {name} against numpy: 24 valid + 6 fault")


@pytest.mark.slow
@pytest.mark.after_builds
def test_cli_verify_board_all_runs_every_board(capsys):
    for name in boards.BOARDS:
        csim_or_skip(name)
    assert cli.main(["verify", "--engine", "csim", "--board", "all", "--cases", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[3] for line in out.splitlines() if line.startswith("verify csim on ")] == list(boards.BOARDS)
    assert out.count("OK: every case bit-exact") == len(boards.BOARDS)


def test_cli_verify_refuses_an_unknown_board(capsys):
    assert cli.main(["verify", "--board", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and all(b in err for b in boards.BOARDS)


def test_docs_board_table_is_the_headers():
    """docs/overlay.md's board table restates header facts (each defined once,
    in the headers): every row must say what its header says."""
    from ctrain import perfmodel
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "overlay.md")).read()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 15 and cells[0] in boards.BOARDS:
            rows[cells[0]] = cells
    assert sorted(rows) == sorted(boards.BOARDS)
    for name, cells in rows.items():
        b, m = boards.get(name), perfmodel.board(name)
        want = [name, f"`{b.pynq_name}`", b.part, None, f"{b.pe_lanes} x {b.pe_rows} x {b.pe_cols}",
                f"{b.clock_mhz} MHz", None, None, str(b.chunk), str(b.sparse_entries),
                str(b.sparse_win), str(b.sparse_xt), str(m.sparse_wdepth), str(m.sparse_odepth),
                f"{m.sparse_list:,}"]
        got = [c if w is not None else None for c, w in zip(cells, want)]
        assert got == want, name
