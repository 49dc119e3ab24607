"""Packaging: the sdist is complete and installs in a fresh venv; a missing
compiler or Python headers stop the build with one line; the shipped digits
are scikit-learn's; the base requirements are met by a PYNQ 3.x image's
package set; the README's test command is what CI runs."""
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from ctrain import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "host_lib"))
from build_host import toolchain_problem  # noqa: E402


def _pyproject():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


# -- the sdist ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(900)  # a venv, an isolated build and a pip install: about a minute on an idle 2-core machine
def test_sdist_is_complete_and_installs_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    name = subprocess.run(
        [sys.executable, "-c", "import sys, setuptools.build_meta as b; print(b.build_sdist(sys.argv[1]))",
         str(dist)], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1]
    sdist = dist / name
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    for needed in ("MANIFEST.in", "host_lib/build_host.py", "driver/ctrain/engine/csim/build.py",
                   "host_lib/ctrain_host.c", "host_lib/ctrain_host.h", "overlay/include/ctrain_isa.h",
                   "overlay/hls/ctrain_top.cpp", "overlay/hls/config/pynq_z2.h", "overlay/Makefile",
                   "driver/ctrain/data_files/digits.npz", "driver/ctrain/notebooks/1-quick-start-emulation.ipynb",
                   "scripts/run_tests.py", "tests/test_packaging.py"):
        assert needed in members, f"{needed} missing from {name}"
    built = [m for m in members if m.endswith((".so", ".o", ".pyc")) or m == "driver/ctrain/_host.c"]
    assert not built, f"build products in the sdist: {built}"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_NO_BUILD_ISOLATION")}
    inst = subprocess.run([py, "-m", "pip", "install", "--quiet", str(sdist)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path))
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    # the installed copy (not this checkout): C host library, shipped data, C-sim sources, no scikit-learn
    probe = ("import importlib.util, os, ctrain, ctrain.hostlib as h, ctrain.data as d\n"
             "pkg = os.path.dirname(ctrain.__file__)\n"
             "ds = d.load_digits()\n"
             "q, sat = h.quantize(ds.train_x[0], -4)\n"
             "print(pkg, len(ds.train_y), len(ds.test_y), int(q.sum()), sat,\n"
             "      os.path.isfile(os.path.join(pkg, 'overlay_src', 'hls', 'ctrain_top.cpp')),\n"
             "      importlib.util.find_spec('sklearn') is None)\n")
    out = subprocess.run([py, "-c", probe], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                         check=True).stdout.split()
    expect = data.load_digits()
    q_here = int((expect.train_x[0] * 16).astype(np.int64).sum())  # 2^-(-4) * x: the pixel counts, exact
    assert out[0].startswith(str(venv)), out
    assert out[1:] == [str(len(expect.train_y)), str(len(expect.test_y)), str(q_here), "0", "True", "True"]
    helped = subprocess.run([str(venv / "bin" / "ctrain"), "train", "--help"], capture_output=True, text=True,
                            env=env, check=True)
    assert "--dataset" in helped.stdout


# -- a missing toolchain -----------------------------------------------------------

def test_missing_compiler_stops_the_build_with_one_line(tmp_path):
    env = dict(os.environ, CC="/nonexistent/ctrain-cc")
    res = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"),
                          "--build-temp", str(tmp_path / "tmp")], cwd=ROOT, env=env, capture_output=True,
                         text=True)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last == toolchain_problem(cc="/nonexistent/ctrain-cc")
    assert last.startswith("ctrain: cannot build its C host library: the C compiler '/nonexistent/ctrain-cc' "
                           "is not on PATH; install what is missing (Debian/Ubuntu: apt-get install gcc "
                           "python3-dev")
    assert "Traceback" not in res.stderr and not list((tmp_path).rglob("*.o"))


def test_missing_python_headers_are_named(tmp_path):
    msg = toolchain_problem(include_dir=str(tmp_path))
    assert msg == ("ctrain: cannot build its C host library: the Python headers are missing (no Python.h in "
                   f"{tmp_path}); install what is missing (Debian/Ubuntu: apt-get install gcc python3-dev; "
                   "Fedora: dnf install gcc python3-devel) or set CC to a working compiler")
    both = toolchain_problem(cc="no-such-cc --flag", include_dir=str(tmp_path))
    assert "the C compiler 'no-such-cc --flag' is not on PATH and the Python headers are missing" in both
    assert toolchain_problem() is None  # this machine builds it


# -- the shipped digits ------------------------------------------------------------

def test_shipped_digits_equal_scikit_learns():
    sk = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split
    images, labels = data.digits_arrays()
    bunch = sk.load_digits()
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)
    x = (bunch.images.astype(np.float32) / np.float32(16.0))[:, None]
    for seed, fraction in ((0, 0.2), (1, 0.2), (7, 0.1), (3, 0.33)):
        ours = data.load_digits(test_fraction=fraction, seed=seed)
        tx, vx, ty, vy = train_test_split(x, bunch.target, test_size=fraction, random_state=seed,
                                          stratify=bunch.target)
        assert np.array_equal(ours.train_x, tx) and np.array_equal(ours.test_x, vx)
        assert np.array_equal(ours.train_y, ty) and np.array_equal(ours.test_y, vy)


def test_digits_split_is_stratified_and_disjoint():
    ds = data.load_digits(test_fraction=0.2, seed=5)
    assert len(ds.test_y) == 360 and len(ds.train_y) == 1797 - 360
    counts = np.bincount(data.digits_arrays()[1], minlength=10)
    test_counts = np.bincount(ds.test_y, minlength=10)
    assert np.all(np.abs(test_counts - counts * 0.2) < 1)  # every class within one of its share
    both = np.concatenate([ds.train_x, ds.test_x]).reshape(1797, -1)
    assert len(np.unique(both, axis=0)) == len(np.unique(data.digits_arrays()[0].reshape(1797, -1), axis=0))


# -- a PYNQ image's package set ----------------------------------------------------

def _image_packages(path):
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins[name.strip().lower()] = version.strip()
    return pins


def test_base_requirements_are_met_by_the_pynq_image_package_set():
    """What `pip install --no-build-isolation -c scripts/pynq-image-constraints.txt .`
    resolves on a PYNQ 3.0/3.1 image: every base requirement already installed
    at the image's version (so nothing is upgraded or compiled), Python 3.10."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    project = _pyproject()["project"]
    image = _image_packages(os.path.join(ROOT, "scripts", "pynq-image-constraints.txt"))
    assert image["numpy"] == "1.21.5" and image["cffi"] == "1.15.0"
    env = {"python_version": "3.10", "platform_machine": "armv7l", "sys_platform": "linux"}
    unmet = []
    for text in project["dependencies"]:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate(env):
            continue
        have = image.get(req.name.lower())
        if have is None or not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{text} (image: {have})")
    assert not unmet, f"would be installed or built on the image: {unmet}"
    assert SpecifierSet(project["requires-python"]).contains("3.10")
    assert not any("scikit" in r or "sklearn" in r for r in project["dependencies"])


# -- the README's commands ---------------------------------------------------------

def _readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def test_ci_runs_exactly_the_readme_test_command():
    quick = _readme().split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    step2 = quick.split("# 2.", 1)[1].splitlines()[1:]  # after the comment line that names the step
    command = next(line.strip() for line in step2 if line.strip() and not line.strip().startswith("#"))
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    assert ci[-1] == command, (ci[-1], command)
    assert re.fullmatch(r"python3 scripts/run_tests\.py", command)


def _figures():
    import importlib.util
    spec = importlib.util.spec_from_file_location("readme_figures", os.path.join(ROOT, "benchmarks",
                                                                                  "readme_figures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_figures_table_is_the_scripts_and_its_commands_parse():
    fig = _figures()
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "readme_figures.py"), "--dry-run"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{sum(1 + len(r.extra) for r in fig.ROWS)} commands parse; README table has 7 rows"
    body = _readme().split(fig.BEGIN, 1)[1].split(fig.END, 1)[0]
    shown = re.findall(r"^\| [^|]+ \| `([^`]+)` \|", body, re.M)
    assert shown == [r.command for r in fig.ROWS]
    assert "not measured yet" not in fig.current_results(_readme()).values()
    with pytest.raises(SystemExit, match="does not parse"):
        fig.check_parses("ctrain train --no-such-option")
    with pytest.raises(SystemExit, match="does not parse"):
        fig.check_parses("ctrain verify --engine verilog")
