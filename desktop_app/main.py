"""``pneumo-desktop`` entry point. The viewer is built in issue 5; until then this says so."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("pneumo-desktop: the desktop viewer is not built yet (planned: issue 5). "
          "The hub (`pneumo-hub`) is available.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
