"""Runs `ctrain perf --json` for LeNet-5 and CNV at batch 64 on every board:
dense, 80% sparse as the compiler chooses per layer (`--sparse-exec auto`,
the default) and 80% sparse with every pruned layer on the sparse unit
(`--sparse-exec always`), and prints the markdown tables docs/overlay.md
holds: per board the PE array, its peak beside the chip's int8 peak and the
resources; per run the efficiency per phase and the achieved GOP/s; per model
and board the sparse-to-dense cycle ratios per phase and which layers run
sparse."""
import json
import os
import subprocess
import sys
import tempfile

from ctrain import boards

RUNS = ((0.0, "auto"), (0.8, "auto"), (0.8, "always"))
PE_PHASES = ("FP", "EB", "WG")


def perf(tmp, model, board, sp, mode):
    out = os.path.join(tmp, f"{model}-{board}-{sp}-{mode}.json")
    cmd = [sys.executable, "-m", "ctrain", "perf", "--model", model, "--batch", "64", "--board", board,
           "--sparsity", str(sp), "--sparse-exec", mode, "--json", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as fh:
        return json.load(fh)


def main():
    rows, board_rows, ratio_rows = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("lenet5", "cnv"):
            for board in boards.BOARDS:
                reps = {run: perf(tmp, model, board, *run) for run in RUNS}
                for (sp, mode), r in reps.items():
                    ph = r["phases"]
                    p, res = r["peak"], r["resources"]
                    board_rows[board] = (
                        f"| {board} | {p['pe_lanes']} x {p['pe_rows']} x {p['pe_cols']} | {p['clock_mhz']:g} MHz | "
                        f"{p['gops']:.1f} ({p['products']}) | {p['chip_int8_gops']:.1f} ({p['part_clock_mhz']:g} MHz) | "
                        f"{100 * p['pe_fraction']:.1f}% | "
                        + " | ".join(f"{res[k]['used']:g} / {res[k]['available']:g}" for k in
                                     ("dsp", "bram36", "uram", "lut"))
                        + f" | {'yes' if r['fits'] else 'no'} |")
                    rows.append(f"| {model} | {board} | {sp:g} | {mode if sp else '-'} | "
                                + " / ".join(f"{100 * ph[k]['efficiency']:.1f}" for k in PE_PHASES)
                                + f" | {100 * r['total']['efficiency']:.1f} | {r['total']['cycles']:,} | "
                                f"{1e3 * r['total']['seconds']:.1f} | {r['total']['gops']:.2f} | "
                                f"{r['total']['equivalent_gops']:.2f} | "
                                f"{100 * r['total']['gops'] / r['peak']['chip_int8_gops']:.2f} | "
                                + " / ".join(f"{100 * ph[k]['planned_efficiency']:.1f}" for k in PE_PHASES)
                                + f" ({100 * r['total']['planned_efficiency']:.1f}) |")
                dense, auto, always = (reps[run] for run in RUNS)

                def ratio(a, key=None):
                    num = a["total"]["cycles"] if key is None else sum(a["phases"][k]["cycles"] for k in key)
                    den = dense["total"]["cycles"] if key is None else sum(dense["phases"][k]["cycles"] for k in key)
                    return num / den
                forms = "".join("s" if e["exec"] == "sparse" else "d" for e in auto["execution"])
                ratio_rows.append(
                    f"| {model} | {board} | {forms} | "
                    + " / ".join(f"{ratio(auto, (k,)):.2f}" for k in PE_PHASES)
                    + f" | {ratio(auto, PE_PHASES):.2f} | {ratio(auto):.2f} | {ratio(always):.2f} | "
                    f"{100 * auto['total']['efficiency']:.1f} / {100 * dense['total']['efficiency']:.1f} | "
                    f"{auto['total']['equivalent_gops']:.2f} |")
    print("| board | PE array (L x R x C) | clock | peak GOP/s (products / cycle) | chip int8 peak GOP/s "
          "(part clock) | peak / chip | DSP | BRAM36 | URAM | LUT | fits |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(board_rows[b] for b in boards.BOARDS))
    print()
    print("| model | board | sparsity | pruned layers | FP / EB / WG efficiency % | iteration efficiency % "
          "| cycles / iteration | ms | achieved GOP/s | equivalent GOP/s | achieved / chip int8 peak % "
          "| planned (hand-pipelined regions DATAFLOW): FP / EB / WG (iteration) efficiency % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| model | board | layers sparse (s) or dense (d), auto | FP / EB / WG cycles, auto / dense "
          "| FP+EB+WG, auto / dense | iteration, auto / dense | iteration, always / dense "
          "| iteration efficiency %, auto / dense | equivalent GOP/s, auto |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(ratio_rows))


if __name__ == "__main__":
    main()
