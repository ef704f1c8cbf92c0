"""The decoded-image cache: an epoch never decodes a file twice, a changed file is decoded again, and a
damaged entry or a full disk never stops or skews training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from contract.preprocess import read_image, resize_gray, to_gray
from hub import decode_cache
from hub.config import TrainConfig
from hub.decode_cache import DecodeCache
from hub.train import XrayDataset
from tests.conftest import sample_files


@pytest.fixture
def decodes(monkeypatch):
    """Counts the files the cache decodes."""
    seen: list = []

    def counting(path, *a, **k):
        seen.append(path)
        return read_image(path, *a, **k)

    monkeypatch.setattr(decode_cache, "read_image", counting)
    return seen


def _epoch(ds):
    return [ds[i][0] for i in range(len(ds))]


def test_the_second_epoch_and_the_next_run_decode_nothing_and_see_the_same_input(tmp_path, decodes):
    files = sample_files("NORMAL", 3) + sample_files("PNEUMONIA", 3)
    spec = TrainConfig(image_size=64).spec()
    ds = XrayDataset(files, [0] * len(files), spec, cache=DecodeCache(tmp_path / "c"))
    first = _epoch(ds)
    assert len(decodes) == 6
    again = _epoch(XrayDataset(files, [0] * len(files), spec, cache=DecodeCache(tmp_path / "c")))
    assert len(decodes) == 6, "a cached image was decoded again"
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # the cached input is the shared preprocessing's, within 16-bit rounding
    plain = XrayDataset(files, [0] * len(files), spec)
    assert max(float((a - b).abs().max()) for a, b in zip(first, _epoch(plain))) < 1e-4


def test_a_changed_file_and_another_size_are_decoded_anew(tmp_path, decodes):
    src = sample_files("NORMAL", 1)[0]
    f = tmp_path / "x.png"
    Image.open(src).convert("L").save(f)
    cache = DecodeCache(tmp_path / "c")
    before = XrayDataset([f], [0], TrainConfig(image_size=64).spec(), cache=cache)[0][0]
    Image.fromarray(255 - np.asarray(Image.open(f))).save(f)  # same name, new content
    after = XrayDataset([f], [0], TrainConfig(image_size=64).spec(), cache=cache)[0][0]
    assert len(decodes) == 2 and not np.allclose(before, after)
    expected = resize_gray(to_gray(read_image(f)), 64)
    assert np.abs(after[0].numpy() * 0.229 + 0.485 - expected).max() < 1e-4
    XrayDataset([f], [0], TrainConfig(image_size=32).spec(), cache=cache)[0]
    assert len(decodes) == 3


@pytest.mark.parametrize("damage", [b"", b"\x93NUMPY garbage", None])
def test_a_damaged_entry_is_decoded_again_and_rewritten(tmp_path, decodes, damage):
    f = sample_files("NORMAL", 1)[0]
    cache = DecodeCache(tmp_path / "c")
    ds = XrayDataset([f], [0], TrainConfig(image_size=64).spec(), cache=cache)
    good = ds[0][0]
    entry = cache.entry(ds.digests[0], 64)
    if damage is None:
        np.save(entry, np.zeros((3, 3), np.uint16))  # a whole file of the wrong shape
    else:
        entry.write_bytes(damage)
    assert np.array_equal(ds[0][0], good) and len(decodes) == 2
    assert np.load(entry).shape == (64, 64)


def test_an_unwritable_cache_trains_on_without_it(tmp_path, decodes, caplog):
    blocked = tmp_path / "c"
    blocked.write_text("a file where the cache folder should be")
    files = sample_files("PNEUMONIA", 3)
    ds = XrayDataset(files, [0] * 3, TrainConfig(image_size=64).spec(), cache=DecodeCache(blocked))
    assert len(_epoch(ds)) == 3 and len(_epoch(ds)) == 3
    assert len(decodes) == 6
    assert sum("cannot be written" in r.message for r in caplog.records) == 1
