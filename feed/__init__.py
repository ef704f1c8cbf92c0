"""The signed model feed (TUF, python-tuf): how a champion travels from the hub to the clinics.

``repository`` the hub side: keys, init, publish, refresh, status (signs); ``server`` a static HTTP
server for the feed folder; ``client`` the app side (no torch): verify, download, offer.
docs/model-package.md, "Feed", is the contract.
"""

CHAMPION = "champion.json"  # the target naming the current champion: {"version": N, "files": [...]}
