"""The one atomic writer: a reader sees the old file or the new one, and a failed write leaves the old."""

from __future__ import annotations

import os
import stat

import pytest

from contract.atomic import replacing, write_atomic


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"epoch 3")
    with pytest.raises(OSError, match="disk full"):
        with replacing(target) as tmp:
            tmp.write_bytes(b"half of epoch")
            raise OSError(28, "disk full")
    assert target.read_bytes() == b"epoch 3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_finished_write_replaces_the_file_readable_by_all(tmp_path):
    target = tmp_path / "feed" / "timestamp.json"  # the folder is created
    write_atomic(target, "{}")
    with replacing(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".")  # hidden from the feed's server
        tmp.write_text('{"version": 2}')
    assert target.read_text() == '{"version": 2}'
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["timestamp.json"]
