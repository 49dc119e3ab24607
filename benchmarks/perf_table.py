"""Runs `ctrain perf --json` for LeNet-5 and CNV at batch 64, dense and 80%
sparse, on every board, and prints the markdown tables docs/overlay.md holds:
per board the PE array, its peak beside the chip's int8 peak and the
resources; per run the efficiency per phase and the achieved GOP/s."""
import json
import os
import subprocess
import sys
import tempfile

from ctrain import boards


def main():
    rows, board_rows = [], {}
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
                    p, res = r["peak"], r["resources"]
                    board_rows[board] = (
                        f"| {board} | {p['pe_lanes']} x {p['pe_rows']} x {p['pe_cols']} | {p['clock_mhz']:g} MHz | "
                        f"{p['gops']:.1f} | {p['chip_int8_gops']:.1f} ({p['part_clock_mhz']:g} MHz) | "
                        f"{100 * p['pe_fraction']:.1f}% | "
                        + " | ".join(f"{res[k]['used']:g} / {res[k]['available']:g}" for k in
                                     ("dsp", "bram36", "uram", "lut"))
                        + f" | {'yes' if r['fits'] else 'no'} |")
                    rows.append(f"| {model} | {board} | {sp:g} | "
                                + " / ".join(f"{100 * ph[k]['efficiency']:.1f}" for k in ("FP", "EB", "WG"))
                                + f" | {100 * r['total']['efficiency']:.1f} | {r['total']['cycles']:,} | "
                                f"{1e3 * r['total']['seconds']:.1f} | {r['total']['gops']:.2f} | "
                                f"{r['total']['equivalent_gops']:.2f} | "
                                f"{100 * r['total']['gops'] / r['peak']['chip_int8_gops']:.2f} |")
    print("| board | PE array (L x R x C) | clock | PE peak GOP/s | chip int8 peak GOP/s (part clock) "
          "| PE / chip | DSP | BRAM36 | URAM | LUT | fits |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(board_rows[b] for b in boards.BOARDS))
    print()
    print("| model | board | sparsity | FP / EB / WG efficiency % | iteration efficiency % | cycles / iteration "
          "| ms | achieved GOP/s | equivalent GOP/s | achieved / chip int8 peak % |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
