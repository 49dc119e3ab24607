"""The narrow quantizers of overlay/hls/quant.h (quant8: the int8 epilogues'
sat8(rshift_round) with its left shift on a byte; lane_shift8: ADD's
operand alignment on a byte) against rshift_round, the definition: every
int8 operand and shift, and for quant8 every value within 2^16, the powers
of two and their neighbours, and random 64-bit values (tb/quant_tb.cpp)."""
import re
import subprocess

import pytest

from ctrain.engine.csim import build


def test_narrow_quantizers_equal_rshift_round(tmp_path):
    b = build
    try:
        ap_dir, cxx = b.ap_types_dir(), b.cxx_compiler()
    except b.CsimBuildError as exc:
        pytest.skip(str(exc))
    root = b.overlay_dir()
    exe = tmp_path / "quant_tb"
    cmd = [cxx, "-std=c++14", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
           "-DCTRAIN_BOARD_ZCU102", f"-I{root}/include", f"-I{root}/hls", f"-I{root}/hls/config",
           "-isystem", ap_dir, f"{root}/hls/tb/quant_tb.cpp", "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    m = re.search(r"cases=(\d+) mismatches=(\d+)$", out.stdout.strip())
    assert m and int(m.group(1)) > 18_000_000 and m.group(2) == "0", out.stdout
    assert out.returncode == 0
