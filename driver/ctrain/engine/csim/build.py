"""cffi build of the C-sim engine: the HLS sources (overlay/hls) compiled
natively for one board configuration and loaded as a Python extension (as
hls4ml's backend compiles and loads its library).

Built once per distinct input and cached (like hls4ml's compile()): the cache
key hashes every HLS source and header, the ISA header, the ap_types headers,
the compile flags, the compiler version and the Python ABI. The cache lives in
$CTRAIN_CACHE_DIR or ~/.cache/ctrain/csim.

The sources are where ctrain.overlay_src finds them: the repo's overlay/ or,
installed, the package's copy (setup.py copies overlay/include and
overlay/hls to ctrain/overlay_src).

    python -m ctrain.engine.csim [--board zcu104] [--verbose]   (builds ahead of time)
"""
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from ... import boards
from ...disk_cache import cache_root as _cache_root, file_lock
from ...overlay_src import cdef_block, overlay_dir as _overlay_dir

#: HLS idioms g++ would warn about: `#pragma HLS ...` and loop labels.
HLS_FLAGS = ["-std=c++14", "-O3", "-Wall", "-Wextra", "-Wno-unknown-pragmas",
             "-Wno-unused-label"]
#: Complete unrolling of the loops the HLS sources `#pragma HLS UNROLL` (g++
#: ignores the pragma): up to 64 iterations and 1000 instructions, above g++'s
#: -O3 defaults (16, 200) that leave a 32-PE loop (the sparse unit's barrel
#: shifter, products and accumulators) a loop of byte steps; the sparse
#: unit runs 1.8x faster (benchmarks/README.md).  GCC's spelling: dropped
#: when the compiler rejects it (unroll_flags).
UNROLL_FLAGS = ["--param=max-completely-peel-times=64", "--param=max-completely-peeled-insns=1000"]
#: Set to 0 for a portable build (no -march=native), e.g. for a cache shared
#: by machines of different CPUs.
NATIVE_ENV = "CTRAIN_CSIM_NATIVE"
#: Sources only the testbench compiles.
_NOT_IN_LIB = ("ctrain_tb.cpp",)
INSTALL_HINT = ("install hls4ml, which ships them (`pip install ctrain[csim]` or "
                "`pip install hls4ml`), or point $XILINX_HLS at a Vitis HLS install")


class CsimBuildError(RuntimeError):
    """The C-sim engine cannot be built here; the message says what to install."""


def overlay_dir():
    """ctrain.overlay_src.overlay_dir, its failure as a CsimBuildError."""
    try:
        return _overlay_dir()
    except FileNotFoundError as exc:
        raise CsimBuildError(str(exc)) from exc


def ap_types_dir():
    """Directory with ap_int.h: $XILINX_HLS/include, else hls4ml's bundled copy
    (found without importing hls4ml, which is slow and pulls dependencies)."""
    xilinx = os.environ.get("XILINX_HLS")
    if xilinx:
        inc = os.path.join(xilinx, "include")
        if os.path.isfile(os.path.join(inc, "ap_int.h")):
            return inc
    spec = importlib.util.find_spec("hls4ml")
    if spec is not None and spec.origin:
        inc = os.path.join(os.path.dirname(spec.origin), "templates", "vivado", "ap_types")
        if os.path.isfile(os.path.join(inc, "ap_int.h")):
            return inc
    raise CsimBuildError("the Xilinx ap_types headers (ap_int.h) were not found; " + INSTALL_HINT)


def cxx_compiler():
    """The C++ compiler setuptools will run (CXX, else the interpreter's), checked on PATH."""
    cxx = os.environ.get("CXX") or sysconfig.get_config_var("CXX") or "g++"
    exe = cxx.split()[0]
    if shutil.which(exe) is None:
        raise CsimBuildError(f"C++ compiler {exe!r} not found: the C-sim engine compiles the "
                             "HLS sources with g++ (Debian/Ubuntu: apt-get install g++)")
    return cxx


def _compiler_version(cxx):
    try:
        out = subprocess.run(cxx.split() + ["--version"], capture_output=True, text=True,
                             timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else cxx
    except (OSError, subprocess.SubprocessError):
        return cxx


def unroll_flags(cxx):
    """UNROLL_FLAGS if the compiler takes them (g++), else [] (clang rejects GCC's --param)."""
    try:
        out = subprocess.run(cxx.split() + UNROLL_FLAGS + ["-Werror", "-fsyntax-only", "-x", "c++", os.devnull],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return UNROLL_FLAGS if out.returncode == 0 else []


def native_flags(cxx):
    """["-march=native"] unless $CTRAIN_CSIM_NATIVE is 0 or the compiler
    lacks it, and the target it resolves to (the compiler's expanded -march,
    -mtune and feature flags): that text goes into the cache key, so a cache
    shared with another CPU never loads code this one cannot run."""
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return [], ""
    try:
        out = subprocess.run(cxx.split() + ["-march=native", "-###", "-E", "-x", "c++", os.devnull],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return [], ""
    target = " ".join(t for line in out.stderr.splitlines() for t in line.split()
                      if t.strip('"').startswith(("-march=", "-mtune=", "-m")) and "native" not in t)
    if out.returncode or not target:
        return [], ""
    return ["-march=native"], target


def board_names():
    """The boards (ctrain.boards.BOARDS, read from the config headers)."""
    return boards.BOARDS


def board_define(board):
    names = board_names()
    if board not in names:
        raise ValueError(f"unknown board {board!r}; choose one of {', '.join(names)}")
    return f"-DCTRAIN_BOARD_{board.upper()}"


def lib_sources(hls):
    """The synthesised sources plus the C-sim wrapper, sorted (the unity order)."""
    return sorted(f for f in os.listdir(hls) if f.endswith(".cpp") and f not in _NOT_IN_LIB)


def _hashed_files(root, ap_dir):
    for sub in ("include", "hls", os.path.join("hls", "config")):
        d = os.path.join(root, sub)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if os.path.isfile(path) and name.endswith((".h", ".cpp")):
                yield os.path.join(sub, name), path
    for dirpath, _, names in sorted(os.walk(ap_dir)):
        for name in sorted(names):
            if name.endswith(".h"):
                path = os.path.join(dirpath, name)
                yield os.path.relpath(path, ap_dir), path


def cache_key(board, root, ap_dir, cxx):
    h = hashlib.sha256()
    for rel, path in _hashed_files(root, ap_dir):
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read() + b"\0")
    native, target = native_flags(cxx)
    for part in HLS_FLAGS + unroll_flags(cxx) + native + [target, board_define(board), _compiler_version(cxx),
                             sysconfig.get_config_var("EXT_SUFFIX") or "", sys.version]:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


def cache_root():
    return _cache_root("csim")


def module_name(board):
    return f"_ctrain_csim_{board}"


def make_ffibuilder(board, root, ap_dir, cxx=None):
    """A cffi FFI in API mode: one translation unit that includes every HLS
    source (ap_int.h is parsed once) behind the extern "C" csim_api.h."""
    from cffi import FFI

    cxx = cxx or cxx_compiler()
    hls = os.path.join(root, "hls")
    cdef = cdef_block(os.path.join(hls, "csim_api.h"))
    unity = "#include \"csim_api.h\"\n" + "".join(
        f"#include \"{name}\"\n" for name in lib_sources(hls))
    ffi = FFI()
    ffi.cdef(cdef)
    ffi.set_source(
        module_name(board), unity,
        source_extension=".cpp",
        include_dirs=[hls, os.path.join(hls, "config"), os.path.join(root, "include")],
        extra_compile_args=HLS_FLAGS + unroll_flags(cxx) + native_flags(cxx)[0] + [board_define(board), "-isystem", ap_dir],
        language="c++",
    )
    return ffi


def _find_extension(directory, board):
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    path = os.path.join(directory, module_name(board) + suffix)
    return path if os.path.isfile(path) else None


def build(board=boards.DEFAULT_BOARD, cache_dir=None, verbose=False):
    """Path of the compiled C-sim extension for `board`, building it on a cache miss."""
    board_define(board)
    root, ap_dir, cxx = overlay_dir(), ap_types_dir(), cxx_compiler()
    base = cache_dir or cache_root()
    target = os.path.join(base, f"{board}-{cache_key(board, root, ap_dir, cxx)}")
    found = _find_extension(target, board)
    if found:
        return found
    os.makedirs(base, exist_ok=True)
    with file_lock(target + ".lock"):
        # a second process wanting this build waits here for the first one's
        return _find_extension(target, board) or _build_into(target, board, base, root, ap_dir, cxx, verbose)


def _build_into(target, board, base, root, ap_dir, cxx, verbose):
    """Compile into a private directory and move it into place as `target`,
    so concurrent builders never see a half-written extension."""
    tmp = tempfile.mkdtemp(prefix=f".{board}-", dir=base)
    try:
        ffi = make_ffibuilder(board, root, ap_dir, cxx)
        try:
            ffi.compile(tmpdir=tmp, verbose=verbose)
        except Exception as exc:  # the compiler's own messages went to stderr
            raise CsimBuildError(f"compiling the HLS sources in {root}/hls failed: {exc}") from exc
        for name in os.listdir(tmp):  # keep the extension and its generated source
            if name.endswith(".o"):
                os.remove(os.path.join(tmp, name))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        if not _find_extension(target, board):  # else another process won the race
            if os.path.isdir(target):  # a stale, incomplete entry
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(tmp, target)
            except OSError:
                if not _find_extension(target, board):
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _find_extension(target, board)


def load(board=boards.DEFAULT_BOARD, cache_dir=None, verbose=False):
    """The compiled module (with .ffi and .lib), built if needed."""
    path = build(board, cache_dir, verbose)
    name = module_name(board)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module
