"""The HLS flow checks that run without Xilinx tools: `make -C overlay check`
(the synthesis branch of every source for every board through g++ and clang,
and the HLS lint) and the C-sim testbench for every board, which calls the top
with the signature synthesis and co-simulation see."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import claim_prebuild

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "overlay"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hls_lint"
LINT = OVERLAY / "tools" / "hls_lint.py"

needs_make = pytest.mark.skipif(shutil.which("make") is None or shutil.which("g++") is None,
                                reason="needs make and g++")


def _make(*args, timeout=600):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["make", "-C", str(OVERLAY), "--no-print-directory", f"PYTHON={sys.executable}",
                           *args], capture_output=True, text=True, timeout=timeout, env=env)


def _boards():
    out = _make("-s", "boards")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@needs_make
def test_board_list_follows_config_headers():
    want = sorted(p.stem for p in (OVERLAY / "hls" / "config").glob("*.h") if p.stem != "board")
    assert _boards() == want and "pynq_z2" in want


def _marked(path):
    """Lines a fixture marks `// LINT <rule>`."""
    return {(path.name, n, re.search(r"// LINT (\S+)", line).group(1))
            for n, line in enumerate(path.read_text().splitlines(), 1) if "// LINT " in line}


def _lint(*paths):
    return subprocess.run([sys.executable, str(LINT), *map(str, paths)], capture_output=True, text=True,
                          timeout=60)


def test_lint_finds_exactly_the_marked_lines():
    """Every forbidden division, null pointer and non-canonical DATAFLOW loop
    in the fixtures is reported, on its line, and nothing else (constant
    divisors, template constants, loops with pipelining off, real arrays,
    value parameters, a canonical DATAFLOW loop pass)."""
    files = sorted(FIXTURES.glob("*.cpp"))
    out = _lint(*files)
    assert out.returncode == 1
    found = set()
    for line in out.stdout.splitlines():
        m = re.match(r"(.+?):(\d+): (\S+): ", line)
        assert m, line
        found.add((Path(m.group(1)).name, int(m.group(2)), m.group(3)))
    want = set().union(*(_marked(f) for f in files))
    assert found == want and len(want) == 12


def test_lint_keeps_only_the_synthesis_branch(tmp_path):
    """A division in the C-sim branch of a __SYNTHESIS__ conditional is not
    synthesised; the same division in the synthesis branch is reported."""
    src = tmp_path / "branch.cpp"
    body = ("void u(int *o, int n, int s) {\n  for (int i = 0; i < n; i++) {\n#pragma HLS PIPELINE II=1\n"
            "#ifdef __SYNTHESIS__\n    o[i] = {syn};\n#else\n    o[i] = {sim};\n#endif\n  }\n}\n")
    src.write_text(body.replace("{syn}", "i").replace("{sim}", "i / s"))
    assert _lint(src).returncode == 0
    src.write_text(body.replace("{syn}", "i / s").replace("{sim}", "i"))
    out = _lint(src)
    assert out.returncode == 1 and "branch.cpp:5: div-in-loop" in out.stdout


@pytest.mark.slow
@needs_make
def test_synthesis_branch_is_really_compiled(tmp_path):
    """check-file compiles like `check`: a type error only in the __SYNTHESIS__
    branch fails g++ and clang both, so neither skips that branch."""
    probe = tmp_path / "probe.cpp"
    template = ('#include "agu.h"\n#ifdef __SYNTHESIS__\nstatic_assert(sizeof(beat_t) == sizeof(ddr_t), "beat");\n'
                "int probe(const ddr_t *d) { return beat_lane(d[0], 1) + {extra}; }\n#endif\n")
    probe.write_text(template.replace("{extra}", "0"))
    ok = _make("check-file", f"FILE={probe}", "BOARD=zcu104")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    probe.write_text(template.replace("{extra}", "beat_t().no_such_member()"))
    bad = _make("check-file", f"FILE={probe}", "BOARD=zcu104")
    assert bad.returncode != 0 and "no_such_member" in bad.stderr
    # clang too: run the clang line alone
    clang = _make("-n", "check-file", f"FILE={probe}", "BOARD=zcu104").stdout.strip().splitlines()[-1]
    out = subprocess.run(clang, shell=True, cwd=OVERLAY, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "no_such_member" in out.stderr


@pytest.mark.slow
@needs_make
def test_synthesis_branch_compiles_for_every_board():
    """The synthesis branch of every source for every board through g++ and clang
    (conftest may have started these compiles in the background: waited for here)."""
    claim_prebuild("check-compile")
    out = _make("-j2", "check-compile")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    for board in _boards():
        assert (OVERLAY / "build" / "check" / f"g++-{board}").is_file()
        assert (OVERLAY / "build" / "check" / f"clang-{board}").is_file()


@needs_make
def test_make_check():
    """`make check` as a whole: the compiles above, the lint and the port
    budget (ctrain.tools.ports) on the real sources, clean."""
    claim_prebuild("check-compile")
    out = _make("-j2", "check")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert re.search(r"check: synthesis branch of \d+ sources x \d+ boards", out.stdout)
    assert "ports within budget" in out.stdout


@pytest.mark.slow
@needs_make
# One testbench build (an -O2 compile of every HLS source and the testbench):
# 1-2 minutes on two idle cores, near the suite's 300 s default when loaded.
@pytest.mark.timeout(900)
def test_csim_testbench():
    """The testbench (every opcode against naive loops, every fault) passes,
    calling ctrain_top on an array of beats, on the default board (pynq_z2:
    the 8-byte beat, DSP48E1). One board: the same sources compute on every
    other board's C-sim engine (csim_api.cpp calls the same top through the
    same port copies), which test_boards compares with the numpy engine on
    every opcode and test_perfmodel with the performance model;
    `make csim-all` runs this testbench on every board. (conftest may have
    started its build in the background: waited for here.)"""
    claim_prebuild("testbench-pynq_z2")
    out = _make("csim", "BOARD=pynq_z2", timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert re.search(r"ctrain_tb \(pynq_z2, PE \d+x\d+\): \d+ checks, 0 failures", out.stdout), out.stdout[-3000:]


@pytest.mark.slow
@needs_make
@pytest.mark.timeout(900)
@pytest.mark.parametrize("board", ["pynq_z2", "zcu104"])
def test_mac_shared_build_passes_the_testbench(board):
    """The MAC-shared build (`make csim-shared`: one MAC array for the dense
    unit and the position path, the issue's form, with the item loops and the
    max pool's bands hand-pipelined), which no shipped header builds, keeps
    its synthesis branch compiling and passes the whole testbench: on the
    Pynq-Z2 (one product a DSP48E1) and the ZCU104 (two a DSP48E2, position
    pairs). The banner shows the form the build took. (conftest may have
    started its testbench build in the background: waited for here.)"""
    claim_prebuild(f"shared-{board}")
    out = _make("csim-shared", f"BOARD={board}", timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert ("build: MAC array shared; item loops: dense hand-pipelined, position path "
            "hand-pipelined, max pool hand-pipelined") in out.stdout, out.stdout[-3000:]
    assert re.search(rf"ctrain_tb \({board}, PE \d+x\d+\): \d+ checks, 0 failures", out.stdout), \
        out.stdout[-3000:]


def test_tripcounts_come_from_named_constants():
    """HLS rule 3 (docs/overlay.md): a LOOP_TRIPCOUNT's bounds are built from
    configuration or ISA constants; a bare number above 2 is a guess that
    drifts when a board or limit changes."""
    bare = []
    for path in sorted((OVERLAY / "hls").glob("*.[ch]*")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.search(r"#pragma HLS LOOP_TRIPCOUNT(.*)", line)
            if m and any(int(v) > 2 for v in re.findall(r"(?:min|max)\s*=\s*(\d+)\s*(?:$|\s)", m.group(1))):
                bare.append(f"{path.name}:{n}: {line.strip()}")
    assert not bare, "\n".join(bare)
    assert re.findall(r"(?:min|max)\s*=\s*(\d+)\s*(?:$|\s)", " min=1 max=4096") == ["1", "4096"]
