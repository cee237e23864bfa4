"""``python -m edge --config configs/edge.yaml [--port P] [--upstream URL ...]``"""

import sys

from cdn_core.node.cli import main

if __name__ == "__main__":
    sys.exit(main("edge", sys.argv[1:]))
