"""The hub settings file: written once with weights this machine can load, layered under env and run settings."""

from __future__ import annotations

import dataclasses

import pytest

from hub import settings
from hub.config import HubPaths, SettingsError, TrainConfig
from hub.cycle import CycleConfig
from hub.policy import Policy


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("PNEUMO_SETTINGS", "PNEUMO_POLICY", "PNEUMO_WARM_START", "PNEUMO_BATCH_SETTLE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    return HubPaths(tmp_path / "home")


def test_first_use_writes_every_default_with_weights_none_when_imagenet_is_missing(home):
    cfg = CycleConfig.from_env(home)
    text = (home.home / "hub.toml").read_text()
    assert 'weights = "none"' in text and "random initialisation" in text
    # the file spells out the built-in defaults: reading it back changes nothing but the weights
    assert cfg.train == dataclasses.replace(TrainConfig(), weights="none")
    assert cfg.policy == Policy() and cfg.settle_seconds == 60.0 and cfg.warm_start is False


def test_imagenet_is_written_when_its_file_is_in_torchvisions_cache(home):
    settings.imagenet_file().parent.mkdir(parents=True)
    settings.imagenet_file().write_bytes(b"weights")
    assert CycleConfig.from_env(home).train.weights == "imagenet"


def test_the_torch_free_cache_path_is_the_one_torchvision_reads(home, monkeypatch, tmp_path):
    from hub.model import imagenet_cache_file

    assert settings.imagenet_file() == imagenet_cache_file()
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.imagenet_file() == imagenet_cache_file()


def test_an_edited_file_is_kept_and_used_and_env_and_run_settings_win_over_it(home, monkeypatch):
    settings.ensure(home)
    f = home.home / "hub.toml"
    text = f.read_text().replace("epochs = 10", "epochs = 2").replace("settle_seconds = 60.0", "settle_seconds = 5.0")
    f.write_text(text.replace("min_recall = 0.9", "min_recall = 0.7"))
    assert settings.ensure(home) == (f, False) and "epochs = 2" in f.read_text()  # never rewritten

    cfg = CycleConfig.from_env(home)
    assert (cfg.train.epochs, cfg.settle_seconds, cfg.policy.min_recall) == (2, 5.0, 0.7)
    monkeypatch.setenv("PNEUMO_BATCH_SETTLE_SECONDS", "0")
    cfg = CycleConfig.from_env(home, {"epochs": 1, "policy": {"min_accuracy": 0.6}})
    assert (cfg.train.epochs, cfg.settle_seconds, cfg.policy.min_recall, cfg.policy.min_accuracy) == (1, 0.0, 0.7, 0.6)


def test_pneumo_settings_moves_the_file(home, monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMO_SETTINGS", str(tmp_path / "etc" / "pneumo.toml"))
    CycleConfig.from_env(home)
    assert (tmp_path / "etc" / "pneumo.toml").is_file() and not (home.home / "hub.toml").exists()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda t: t.replace("epochs = 10", "epochs = 'ten'"), "Invalid epochs"),
        (lambda t: t.replace("[train]", "[train]\nepoch = 3"), "unknown key(s) ['epoch'] in [train]"),
        (lambda t: t + "\n[trian]\n", "unknown table(s) ['trian']"),
        (lambda t: t.replace("epochs = 10", "epochs = "), "Cannot read the hub settings"),
        (lambda t: t.replace('compare_on = "accuracy"', 'compare_on = "f1"'), "Invalid compare_on"),
    ],
)
def test_a_bad_file_is_a_settings_error_naming_it(home, edit, said):
    f, _ = settings.ensure(home)
    f.write_text(edit(f.read_text()))
    with pytest.raises(SettingsError) as e:
        CycleConfig.from_env(home)
    assert said in str(e.value) and str(f) in str(e.value)


def test_missing_imagenet_weights_are_refused_before_training(home):
    with pytest.raises(SettingsError, match="set weights = 'none'"):
        settings.check_weights("imagenet", "test")
    with pytest.raises(SettingsError, match="no such file"):
        settings.check_weights(str(home.home / "missing.pt"), "test")
    settings.check_weights("none", "test")


def test_the_settings_command_writes_checks_and_shows_what_a_run_gets(home, monkeypatch, capsys):
    import json

    from hub.cli import main

    monkeypatch.setenv("PNEUMO_BATCH_SETTLE_SECONDS", "5")
    assert main(["--home", str(home.home), "settings"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {home.home / 'hub.toml'}")
    shown = json.loads(out.split("\n", 1)[1])
    assert shown["train"]["weights"] == "none" and shown["cycle"]["settle_seconds"] == 5.0  # the env wins
    (home.home / "hub.toml").write_text((home.home / "hub.toml").read_text().replace("epochs = 10", "epochs = 'ten'"))
    assert main(["--home", str(home.home), "settings"]) == 1
    assert "epochs" in capsys.readouterr().err
