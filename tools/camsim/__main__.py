"""Entry point: `/usr/bin/python3 tools/camsim --port 0 --auth-port 0 --control-port 0 [--preset test]`."""

from __future__ import annotations

import os
import sys

# Run as a directory (`python3 tools/camsim`): make the `camsim` package importable from tools/.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from camsim.app import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
