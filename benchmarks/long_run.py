"""Peak memory of a long fixed-point run: `python benchmarks/long_run.py
--iterations 2000` and `--iterations 20000` should report peak RSS within a few
percent of each other (nothing grows per iteration but 9 bytes of history)."""
import argparse
import math
import resource
import time

from ctrain.train import TrainConfig, Trainer


def rss_mib():
    """Current resident set from /proc (Linux), in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=20000)
    p.add_argument("--model", default="digits-cnn")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--prune", type=float, default=0.5, help="pruned half-way, as by default")
    args = p.parse_args()
    probe = Trainer(TrainConfig(model=args.model, batch_size=args.batch_size, epochs=1))
    epochs = math.ceil(args.iterations / probe.iters_per_epoch)
    t = Trainer(TrainConfig(model=args.model, batch_size=args.batch_size, epochs=epochs, warmup_epochs=1,
                            lr=0.02, prune=args.prune), dataset=probe.ds)
    t.total = args.iterations
    t0 = time.perf_counter()
    acc = t.run(progress=False, verbose=False)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"iterations {t.it}  time {dt:.1f} s  test accuracy {100 * acc:.2f}%  "
          f"peak RSS {peak:.1f} MiB  RSS at end {rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
