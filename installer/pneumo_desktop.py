"""The bundle's entry point: the same ``pneumo-desktop`` command as the source tree's console script."""

import sys

from desktop_app.main import main

if __name__ == "__main__":
    sys.exit(main())
