"""One way to replace a file: readers (another process, a web server, the next start after a crash)
see the old content or the new, never half of it. Shared by the hub, the feed, the desktop app and
the installer: ``write_atomic`` for bytes, ``replacing`` for writers that need a file name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: int = 0o644, sync_folder: bool = True) -> Iterator[Path]:
    """A temporary file name beside ``path``, for writers that want a name (torch.save, a copy, a
    tar file). When the block ends without error the file is fsync'd, chmod'd ``mode`` and renamed
    over ``path``, and (``sync_folder``) the folder fsync'd so that the rename survives a power cut;
    on any error it is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)  # mkstemp makes 0600; e.g. the feed's web server must be able to read it
        os.replace(tmp, path)
        if sync_folder:
            sync_folder_entries(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def sync_folder_entries(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: fsync the directory); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows: a directory cannot be opened; NTFS journals the rename
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` (str as UTF-8) to ``path`` through :func:`replacing`."""
    with replacing(path, mode) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
