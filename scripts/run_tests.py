#!/usr/bin/env python3
"""The README's test command: the suite in two fresh venvs, one per numpy major.

    python3 scripts/run_tests.py [--only numpy1-pynq|numpy2|pynq3] [--keep]

numpy1-pynq  `pip install ".[test,csim,board]" "numpy<2"`: pynq 4.0 (which pins
             numpy<2), so the board tests run over real pynq. Needs numpy 1.26
             wheels, which exist for Python 3.9 to 3.12; on 3.13 pip would build
             numpy from source for many minutes, so this run is skipped there
             (the line says so).
numpy2       `pip install ".[test,csim]" "numpy>=2"`: no pynq; the board tests
             skip with their reason.
pynq3        only with --only pynq3: pynq 3.0.1 (pycparser<3, numpy<2) and
             the tests that touch pynq (board, notebooks, pynq compatibility).

Each venv is made afresh under .venv-test/<run> with the interpreter running
this script (pip's cache keeps reinstalls quick), the package is installed
non-editable, and pytest runs from the repo root against the installed copy.
Each run's line gives the tests' seconds and those with the install, and
pytest lists the ten slowest tests: the suite stays under 10 minutes per run
on a 2-core machine (long measurements are benchmarks, benchmarks/README.md).
Exit status 0 only if every run that applies passed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: run name -> (pip requirements, why it cannot run on this interpreter or None)
RUNS = {
    "numpy1-pynq": ([".[test,csim,board]", "numpy<2"],
                    None if sys.version_info < (3, 13) else
                    "numpy 1.26 (pynq 4.0 pins numpy<2) has no wheels for Python 3.13"),
    "numpy2": ([".[test,csim]", "numpy>=2"], None),
    # not run by default: the board path on the PyPI release of PYNQ 3.0's pynq
    "pynq3": ([".[test]", "pynq==3.0.1", "pycparser<3", "numpy<2"],
              None if sys.version_info < (3, 13) else "numpy 1.26 has no wheels for Python 3.13"),
}
DEFAULT = ("numpy1-pynq", "numpy2")
#: pytest arguments per run (default: the whole suite)
PYTEST_ARGS = {"pynq3": ["tests/test_board.py", "tests/test_notebooks.py", "tests/test_pynq_compat.py"]}


def _venv_python(venv):
    return os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")


def run(name, requirements, keep=False):
    """Fresh venv, install, pytest; returns pytest's exit status and its seconds."""
    venv = os.path.join(ROOT, ".venv-test", name)
    if os.path.isdir(venv) and not keep:
        shutil.rmtree(venv)
    if not os.path.isdir(venv):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    py = _venv_python(venv)
    print(f"[{name}] pip install {' '.join(requirements)}", flush=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", *requirements], cwd=ROOT, check=True)
    versions = subprocess.run([py, "-c", "import sys, numpy; print(sys.version.split()[0], numpy.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    print(f"[{name}] Python {versions[0]}, numpy {versions[1]}: python -m pytest -q "
          + " ".join(PYTEST_ARGS.get(name, [])), flush=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # test the installed package
    start = time.monotonic()
    # the slowest tests, listed where the suite's 10-minute budget is watched (README)
    rc = subprocess.run([py, "-m", "pytest", "-q", "--durations=10", *PYTEST_ARGS.get(name, [])],
                        cwd=ROOT, env=env).returncode
    return rc, time.monotonic() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(RUNS), action="append",
                    help="run only this (repeatable; default: " + " and ".join(DEFAULT) + ")")
    ap.add_argument("--keep", action="store_true", help="reuse an existing venv instead of a fresh one")
    args = ap.parse_args(argv)
    results = []
    for name in args.only or DEFAULT:
        requirements, cannot = RUNS[name]
        if cannot:
            results.append((name, f"skipped: {cannot}", True))
            continue
        start = time.monotonic()
        try:
            rc, tests = run(name, requirements, args.keep)
        except subprocess.CalledProcessError as exc:
            results.append((name, f"FAILED to set up: {' '.join(map(str, exc.cmd))} exited {exc.returncode}",
                            False))
            continue
        took = time.monotonic() - start
        results.append((name, f"{'passed' if rc == 0 else 'FAILED'} (tests {tests:.0f} s, {took:.0f} s with install)",
                        rc == 0))
    print("\n".join(f"{name}: {text}" for name, text, _ in results))
    return 0 if all(ok for *_, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
