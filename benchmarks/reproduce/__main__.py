"""`python -m benchmarks.reproduce ...`: the command line of `benchmarks.reproduce.cli`."""

import sys

from benchmarks.reproduce.cli import main

if __name__ == "__main__":
    sys.exit(main())
