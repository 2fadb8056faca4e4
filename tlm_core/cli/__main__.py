"""`python -m tlm_core.cli`: the `tlm` command."""

import sys

from tlm_core.cli import main

sys.exit(main())
