#!/usr/bin/env python3
"""Regenerates the README's "Measured here" table from real runs.

    python benchmarks/readme_figures.py                 # run every row (long: 7 LeNet-5 trainings, bench, fuzz)
    python benchmarks/readme_figures.py --only csim --only fuzz   # some rows; the others keep their text
    python benchmarks/readme_figures.py --dry-run       # check every command parses; run nothing

Each row names the exact `ctrain` command the README shows; the script runs it
(`python -m ctrain.cli`, from the repo root), takes the figure from its output
and rewrites the table between the `figures:begin`/`figures:end` markers, so
the README cannot drift from what the commands print. `--mnist DIR` runs the
MNIST rows on DIR in place of the README's `../shared/data/mnist`.
"""
import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- figures:begin", "<!-- figures:end -->"
MNIST = "../shared/data/mnist"
LENET = f"ctrain train --dataset mnist --data-dir {MNIST}"


@dataclass
class Row:
    key: str
    label: str
    command: str       # as the README shows it
    #: extra runs the figure needs besides `command` (e.g. other seeds)
    extra: list = field(default_factory=list)


ROWS = [
    Row("digits", "digits, default schedule (50% pruned half-way)", "ctrain train"),
    Row("lenet", "LeNet-5, 8 epochs, 8-bit fixed point", f"{LENET} --prune 0"),
    Row("float", "same in float32", f"{LENET} --prune 0 --float"),
    Row("pruned", "LeNet-5, 80% of weights pruned half-way, sparse", f"{LENET} --prune 0.8 --report",
        [f"{LENET} --prune {p} --seed {s}" for s in (1, 2) for p in ("0", "0.8")]),
    Row("bench", "emulation speed, LeNet-5 batch 64", "ctrain bench"),
    Row("csim", "csim vs numpy", "ctrain verify --engine csim --cases 1000"),
    Row("fuzz", "decoder fuzzing", "ctrain fuzz --engine numpy --engine csim --streams 5000"),
]


class _Parsed(Exception):
    pass


def check_parses(command):
    """Parse `command` with ctrain's own CLI parser (cli.main up to parse_args), running nothing."""
    from ctrain import cli
    argv = command.split()[1:]
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        ns = original(self, args, namespace)
        raise _Parsed(ns)
    argparse.ArgumentParser.parse_args = parse_then_stop
    try:
        code = cli.main(argv)  # returns the usage error's status instead of raising it
    except _Parsed as done:
        return done.args[0]
    except SystemExit as exc:
        raise SystemExit(f"readme_figures: `{command}` does not parse (exit {exc.code})") from exc
    finally:
        argparse.ArgumentParser.parse_args = original
    raise SystemExit(f"readme_figures: `{command}` does not parse (exit {code})")


def run(command, mnist):
    """(stdout, seconds) of one command, run from the repo root."""
    argv = [sys.executable, "-m", "ctrain.cli"] + command.replace(MNIST, mnist).split()[1:]
    print(f"$ {command}", flush=True)
    start = time.monotonic()
    res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - start
    if res.returncode != 0:
        raise SystemExit(f"readme_figures: `{command}` exited {res.returncode}:\n{res.stderr[-2000:]}")
    return res.stdout, took


def _accuracy(out):
    found = re.findall(r"^test accuracy: ([0-9.]+)%", out, re.M)
    if not found:
        raise SystemExit("readme_figures: no 'test accuracy:' line in the output")
    return float(found[-1])


def _ratio(out, name, what):
    m = re.search(rf"^modeled {re.escape(name)} {what}, sparse / dense: .* = ([0-9.]+)$", out, re.M)
    if not m:
        raise SystemExit(f"readme_figures: no modeled {name} {what} line (needs a sparse run with --report)")
    return float(m.group(1))


def figure(row, mnist, done):
    """The result text of `row`; `done` holds (stdout, seconds) of commands already run."""
    def out_of(cmd):
        if cmd not in done:
            done[cmd] = run(cmd, mnist)
        return done[cmd]
    out, took = out_of(row.command)
    if row.key == "digits":
        return f"{_accuracy(out):.2f}% test accuracy, {took:.0f} s wall"
    if row.key in ("lenet", "float"):
        return f"{_accuracy(out):.2f}% ({took:.0f} s wall)"
    if row.key == "pruned":
        dense0 = _accuracy(out_of(f"{LENET} --prune 0")[0])
        deltas = [_accuracy(out) - dense0]
        for s in (1, 2):
            deltas.append(_accuracy(out_of(f"{LENET} --prune 0.8 --seed {s}")[0])
                          - _accuracy(out_of(f"{LENET} --prune 0 --seed {s}")[0]))
        modeled = ", ".join(f"{n} {_ratio(out, n, 'cycles'):.2f}x dense" for n in ("FP+EB", "WG"))
        compute = ", ".join(f"{_ratio(out, n, 'compute-only cycles'):.2f}x" for n in ("FP+EB", "WG"))
        return (f"{_accuracy(out):.2f}% (seeds 0/1/2: " + " / ".join(f"{d:+.2f}" for d in deltas)
                + f" pt vs unpruned); modeled on Pynq-Z2: {modeled} (compute-only: {compute})")
    if row.key == "bench":
        env = re.search(r"^python (\S+), numpy ([^,\s]+)(?:, BLAS [^,]+)?(?:, torch (\S+))?", out, re.M)
        line = re.search(r"^\s+64\s+ctrain fixed-point \(emulated\)\s+([0-9]+)\s.*?([0-9.]+)%", out, re.M)
        if not (env and line):
            raise SystemExit("readme_figures: unexpected `ctrain bench` output")
        ratio = re.search(r"batch 64: ([0-9.]+)x", out)
        vs = f" = {ratio.group(1)}x PyTorch fp32" if ratio else " (torch not installed: no ratio)"
        where = f"numpy {env.group(2)}" + (f", torch {env.group(3)}" if env.group(3) else "")
        return f"{line.group(1)} img/s{vs}; host overhead {line.group(2)}% ({where})"
    if row.key == "csim":
        ok = re.search(r"^OK: every case bit-exact", out, re.M)
        return "0 mismatches in 1000 cases" if ok else "MISMATCHES (see the command's output)"
    if row.key == "fuzz":
        parts = re.findall(r"^(\w+): \d+ streams, .*?; (crashes \d+, hangs \d+, writes outside DDR \d+, "
                           r"unclear messages \d+)", out, re.M)
        mism = re.findall(r"^.*mismatch.*$", out, re.M | re.I)
        return "; ".join(f"{e}: {t}" for e, t in parts) + (f"; {mism[-1].strip()}" if mism else "")
    raise KeyError(row.key)


def table(results):
    lines = ["| run | command | result |", "|---|---|---|"]
    lines += [f"| {r.label} | `{r.command}` | {results[r.key]} |" for r in ROWS]
    return "\n".join(lines)


def current_results(text):
    """The result column of the table now in the README, by row key."""
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    by_command = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            by_command[cells[1].strip("`")] = cells[2]
    return {r.key: by_command.get(r.command, "not measured yet") for r in ROWS}


def rewrite(text, results, stamp):
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return (f"{head}{BEGIN} (benchmarks/readme_figures.py; {stamp}) -->\n{table(results)}\n{END}{tail}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=[r.key for r in ROWS], help="rows to measure (repeatable)")
    ap.add_argument("--dry-run", action="store_true", help="check the commands parse; run nothing")
    ap.add_argument("--mnist", default=os.path.normpath(os.path.join(ROOT, MNIST)),
                    help=f"MNIST IDX directory for the rows that name {MNIST}")
    args = ap.parse_args(argv)
    try:  # the installed package (its C host library is built); else the checkout's
        import ctrain  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.join(ROOT, "driver"))
    for row in ROWS:
        for cmd in [row.command] + row.extra:
            check_parses(cmd)
    with open(README) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"readme_figures: README.md has no {BEGIN} ... {END} markers")
    results = current_results(text)
    if args.dry_run:
        print(f"{sum(1 + len(r.extra) for r in ROWS)} commands parse; README table has {len(ROWS)} rows")
        return 0
    selected = [r for r in ROWS if not args.only or r.key in args.only]
    if any(MNIST in " ".join([r.command] + r.extra) for r in selected) and not os.path.isdir(args.mnist):
        raise SystemExit(f"readme_figures: no MNIST directory {args.mnist} (give --mnist DIR)")
    done = {}
    for row in selected:
        results[row.key] = figure(row, args.mnist, done)
        print(f"  {row.label}: {results[row.key]}", flush=True)
    import numpy
    rows = "all rows" if len(selected) == len(ROWS) else "rows " + ", ".join(r.key for r in selected)
    stamp = (f"{rows} last run on Python {sys.version.split()[0]}, numpy {numpy.__version__}, "
             f"{os.cpu_count()} cores")
    with open(README, "w") as f:
        f.write(rewrite(text, results, stamp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
