"""Runs `ctrain perf --json` for LeNet-5 and CNV at batch 64, dense and 80%
sparse, on every board, and prints the markdown table docs/overlay.md holds."""
import json
import os
import subprocess
import sys
import tempfile

from ctrain import boards


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("lenet5", "cnv"):
            for board in boards.BOARDS:
                for sp in (0.0, 0.8):
                    out = os.path.join(tmp, f"{model}-{board}-{sp}.json")
                    cmd = [sys.executable, "-m", "ctrain", "perf", "--model", model, "--batch", "64",
                           "--board", board, "--sparsity", str(sp), "--json", out]
                    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                    with open(out) as fh:
                        r = json.load(fh)
                    ph = r["phases"]
                    rows.append(f"| {model} | {board} | {sp:g} | "
                                + " / ".join(f"{100 * ph[k]['efficiency']:.1f}" for k in ("FP", "EB", "WG"))
                                + f" | {100 * r['total']['efficiency']:.1f} | {r['total']['cycles']:,} | "
                                f"{1e3 * r['total']['seconds']:.1f} | {r['total']['equivalent_gops']:.2f} | "
                                f"{'yes' if r['fits'] else 'no'} |")
    print("| model | board | sparsity | FP / EB / WG efficiency % | iteration efficiency % | cycles / iteration "
          "| ms | equivalent GOP/s | fits |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
