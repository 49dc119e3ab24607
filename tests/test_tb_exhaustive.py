"""The HLS primitives checked exhaustively by small testbenches of their own
(overlay/hls/tb), each compiled alone with g++ for a board's configuration:

- mul2 (hls/mac2.h), two int8 products from one DSP48E2 multiply (Xilinx
  WP486): bit-exact against plain products for all 2^24 operand triples, on
  a packing board (CTRAIN_DSP_INT8 2) and on the Pynq-Z2 (1);
- the narrow quantizers of hls/quant.h (quant8: the int8 epilogues'
  sat8(rshift_round) with the shifts formed at the bits they use;
  lane_shift8: ADD's operand alignment on a byte) against rshift_round, the
  definition: every int8 operand and shift, and for quant8 every value
  within 2^16, the powers of two and the saturation thresholds with their
  neighbours, and random 64-bit values."""
import re
import subprocess

import pytest

from ctrain import boards
from ctrain.engine.csim import build


def _run_tb(source, board, tmp_path):
    """Compile overlay/hls/tb/<source> for `board` and run it: its stdout and exit status."""
    b = build
    try:
        ap_dir, cxx = b.ap_types_dir(), b.cxx_compiler()
    except b.CsimBuildError as exc:
        pytest.skip(str(exc))
    root = b.overlay_dir()
    exe = tmp_path / source.replace(".cpp", "")
    cmd = [cxx, "-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           f"-DCTRAIN_BOARD_{board.upper()}", f"-I{root}/include", f"-I{root}/hls", f"-I{root}/hls/config",
           "-isystem", ap_dir, f"{root}/hls/tb/{source}", "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    return out.stdout.strip(), out.returncode


@pytest.mark.slow
@pytest.mark.parametrize("board", ["zcu102", "pynq_z2"])
def test_mul2_is_exact_for_every_int8_triple(board, tmp_path):
    out, rc = _run_tb("mac2_tb.cpp", board, tmp_path)
    packs = int(boards.get(board).macros["DSP_INT8"])
    assert packs == (2 if boards.get(board).dsp_kind == "DSP48E2" else 1)
    assert re.search(rf"dsp_int8={packs} cases=16777216 mismatches=0$", out), out
    assert rc == 0


def test_narrow_quantizers_equal_rshift_round(tmp_path):
    out, rc = _run_tb("quant_tb.cpp", "zcu102", tmp_path)
    m = re.search(r"cases=(\d+) mismatches=(\d+)$", out)
    assert m and int(m.group(1)) > 18_000_000 and m.group(2) == "0", out
    assert rc == 0
