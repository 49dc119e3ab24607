"""`python -m ctrain.engine.csim [--board B]`: build the C-sim engine ahead of
time and print the extension's path."""
import argparse
import sys

from ... import boards
from .build import CsimBuildError, board_names, build


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    ap.add_argument("--board", choices=board_names(), default=boards.DEFAULT_BOARD)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        print(build(args.board, args.cache_dir, args.verbose))
    except CsimBuildError as exc:
        sys.exit(f"ctrain.engine.csim: {exc}")


if __name__ == "__main__":
    main()
