"""The HLS primitives checked exhaustively by small testbenches of their own
(overlay/hls/tb), each compiled alone with g++ for a board's configuration:

- mul2 (hls/mac2.h), two int8 products from one DSP48E2 multiply (Xilinx
  WP486): bit-exact against plain products for all 2^24 operand triples, on
  a packing board (CTRAIN_DSP_INT8 2) and on the Pynq-Z2 (1);
- the narrow quantizer of hls/quant.h (quant8: the int8 epilogues'
  sat8(rshift_round) with the shifts formed at the bits they use) against
  rshift_round, the definition: every shift, every value within 2^16, the
  powers of two and the saturation thresholds with their neighbours, and
  random 64-bit values;
- ADD's narrow lane (hls/eltwise.h add_one, add_magnitude: the sum formed
  on 25 bits, the gap cut at 16 with the store shift) against the 64-bit
  definition: the stored int8, its clamp and the statistics' |acc| for every
  int8 pair, exponent gap (either operand shifted), store shift and ReLU."""
import re
import subprocess

import pytest

from ctrain import boards
from ctrain.engine.csim import build


def _run_tb(source, board, tmp_path, synthesis=False, defines=()):
    """Compile overlay/hls/tb/<source> for `board` and run it: its stdout and
    exit status. `synthesis`: the sources' synthesis branch (-D__SYNTHESIS__
    through make check's shim, overlay/tools/shim), their ap_int widths."""
    b = build
    try:
        ap_dir, cxx = b.ap_types_dir(), b.cxx_compiler()
    except b.CsimBuildError as exc:
        pytest.skip(str(exc))
    root = b.overlay_dir()
    exe = tmp_path / source.replace(".cpp", "")
    branch = ["-D__SYNTHESIS__", f"-I{root}/tools/shim"] if synthesis else []
    cmd = [cxx, "-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", *branch,
           *(f"-D{d}" for d in defines), f"-DCTRAIN_BOARD_{board.upper()}", f"-I{root}/include", f"-I{root}/hls", f"-I{root}/hls/config",
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
    """quant8 and quant32 (since session 26) against sat8 / sat32 of
    rshift_round, the definition: each checks every case (two counts a value)."""
    out, rc = _run_tb("quant_tb.cpp", "zcu102", tmp_path)
    m = re.search(r"cases=(\d+) mismatches=(\d+)$", out)
    assert m and int(m.group(1)) > 2 * 18_000_000 and m.group(2) == "0", out
    assert rc == 0


@pytest.mark.slow
@pytest.mark.parametrize("synthesis, b_step", [(False, 1), (True, 15)], ids=["csim", "synthesis"])
def test_narrow_add_equals_the_64_bit_definition(synthesis, b_step, tmp_path):
    # C-sim's native words over every pair; synthesis's ap_int words (a width
    # too narrow shows there only) over every a and 18 b's, -128 and 127 among them
    out, rc = _run_tb("add_tb.cpp", "zcu102", tmp_path, synthesis, [f"ADD_TB_B_STEP={b_step}"])
    m = re.search(r"cases=(\d+) mismatches=(\d+)$", out)
    pairs = 256 * (255 // b_step + 1)
    # 63 gaps x 2 sides x 125 shifts x (2 x the pairs (ReLU or not) + 6 dropped)
    assert m and int(m.group(1)) == 63 * 2 * 125 * (2 * pairs + 6) and m.group(2) == "0", out
    assert rc == 0
