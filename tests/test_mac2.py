"""mul2 (overlay/hls/mac2.h), two int8 products from one DSP48E2 multiply
(Xilinx WP486): bit-exact against plain products for all 2^24 operand
triples, on a packing board (CTRAIN_DSP_INT8 2) and on the Pynq-Z2 (1)."""
import re
import subprocess

import pytest

from ctrain import boards
from ctrain.engine.csim import build


@pytest.mark.slow
@pytest.mark.parametrize("board", ["zcu102", "pynq_z2"])
def test_mul2_is_exact_for_every_int8_triple(board, tmp_path):
    b = build
    try:
        ap_dir, cxx = b.ap_types_dir(), b.cxx_compiler()
    except b.CsimBuildError as exc:
        pytest.skip(str(exc))
    root = b.overlay_dir()
    exe = tmp_path / "mac2_tb"
    cmd = [cxx, "-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           f"-DCTRAIN_BOARD_{board.upper()}", f"-I{root}/include", f"-I{root}/hls", f"-I{root}/hls/config",
           "-isystem", ap_dir, f"{root}/hls/tb/mac2_tb.cpp", "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    packs = int(boards.get(board).macros["DSP_INT8"])
    assert packs == (2 if boards.get(board).dsp_kind == "DSP48E2" else 1)
    assert re.search(rf"dsp_int8={packs} cases=16777216 mismatches=0$", out.stdout.strip()), out.stdout
    assert out.returncode == 0
