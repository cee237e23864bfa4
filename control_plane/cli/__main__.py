"""``python -m control_plane.cli``: the same as ``cdnctl``."""

import sys

from control_plane.cli.main import main

sys.exit(main())
