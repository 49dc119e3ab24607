"""`python -m ctrain`: the same command line as `ctrain`."""
import sys

from .cli import main

sys.exit(main())
