"""``python -m bench.optimize``: see :mod:`bench.optimize.run`."""

import sys

from bench.optimize.run import main

sys.exit(main())
