"""The model feed's static HTTP server: the feed folder's files, no listings, cache headers.

Any web server, bucket or CDN can serve a feed (docs/deploy.md); this one is the embedded default
(`pneumo-hub feed serve`, `pneumo-hub up`) and records what it served, for the tests and benches.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from feed.repository import FeedError, metadata_dir

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    status: int
    bytes: int


class _FeedHandler(SimpleHTTPRequestHandler):
    """Static files of the feed folder; no directory listings; each request recorded on the server."""

    def do_GET(self) -> None:
        self._status, self._sent = 0, 0
        self.server.begin()
        try:
            if any(part.startswith(".") for part in urlsplit(self.path).path.split("/")):
                self.send_error(404, "Not found")  # the lock file and half-written temp files
            else:
                super().do_GET()
        finally:
            self.server.record(Request(self.path, int(self._status), self._sent))

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def end_headers(self) -> None:
        if self._status == 200:  # versioned and hash-named files never change; timestamp.json must not be cached
            name = urlsplit(self.path).path.rsplit("/", 1)[-1]
            immutable = re.match(r"\d+\.|[0-9a-f]{64}\.", name) is not None
            self.send_header("Cache-Control", "public, max-age=31536000, immutable" if immutable else "no-cache")
        super().end_headers()

    def copyfile(self, source, outputfile) -> None:
        for chunk in iter(functools.partial(source.read, 1 << 16), b""):
            outputfile.write(chunk)
            self._sent += len(chunk)

    def list_directory(self, path):
        self.send_error(404, "No directory listings")
        return None

    def log_message(self, format: str, *args) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class FeedServer(ThreadingHTTPServer):
    """A static HTTP server for a feed folder; ``requests`` records what it served (for tests and bench)."""

    daemon_threads = True

    def __init__(self, feed_dir: Path, host: str, port: int, handler=_FeedHandler):
        self.feed_dir = Path(feed_dir)
        self.requests: collections.deque[Request] = collections.deque(maxlen=10_000)  # bounded: servers run for months
        self._busy = 0
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), functools.partial(handler, directory=str(self.feed_dir)))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def begin(self) -> None:
        with self._idle:
            self._busy += 1

    def record(self, request: Request) -> None:
        with self._idle:
            self.requests.append(request)
            self._busy -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> list[Request]:
        """The requests served so far, once no request is in flight (a client may return before the
        handler thread has recorded the response it just finished sending)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)
            return list(self.requests)

    def clear_requests(self, timeout: float = 5.0) -> None:
        """Forget the requests served so far, once those in flight are recorded (so a response the
        client already has cannot be counted against what comes next)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout)
            self.requests.clear()

    def start(self) -> FeedServer:
        """Serve in a background thread (tests, the embedded setup); ``close()`` stops it. Idempotent."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="feed-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def serve(feed_dir: Path, host: str = "127.0.0.1", port: int = 8765) -> FeedServer:
    """A bound (not yet running) static server for ``feed_dir``: ``.serve_forever()`` or ``.start()``."""
    if not metadata_dir(feed_dir).is_dir():
        raise FeedError(f"{feed_dir} is not a feed (no metadata/ folder); create one with `feed init`")
    try:
        return FeedServer(feed_dir, host, port)
    except OSError as e:
        raise FeedError(f"Cannot serve on {host}:{port}: {e.strerror or e}") from None
