"""``python -m mid_tier --config configs/mid_tier.yaml [--port P] [--upstream URL ...]``"""

import sys

from cdn_core.node.cli import main

if __name__ == "__main__":
    sys.exit(main("mid", sys.argv[1:]))
