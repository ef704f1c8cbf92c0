"""Settings layers (admin config, user settings) and the model store (install, switch, roll back, fall back)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from desktop_app.config import ConfigError, load_settings, save_user_settings
from desktop_app.models import ModelStore, StoreError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_admin_config_sets_defaults_locks_keys_and_resolves_paths(tmp_path):
    admin = write(
        tmp_path / "etc" / "config.toml",
        'feed_url = "https://hub.example.org/feed"\n'
        'check_interval_hours = 2\nvariant = "int8"\nproxy = "http://proxy:3128"\n'
        'trusted_root = "root.json"\nlocked = ["feed_url"]\n',
    )
    user = write(
        tmp_path / "user" / "settings.json",
        json.dumps(
            {"feed_url": "http://evil.example/feed", "variant": "fp32", "language": "fr", "proxy": "http://x:1"}
        ),
    )
    s = load_settings(admin, user)
    assert s.problems == []
    assert s.feed_url == "https://hub.example.org/feed"  # locked: the user's value is ignored
    assert s.variant == "fp32" and s.language == "fr"  # user keys override the admin's defaults
    assert s.proxy == "http://proxy:3128"  # admin-only key: the user file cannot set it
    assert s.check_interval_hours == 2.0
    assert s.trusted_root == str((tmp_path / "etc" / "root.json").resolve())  # relative to the admin file


def test_bad_values_and_files_are_reported_not_fatal(tmp_path):
    admin = write(tmp_path / "config.toml", 'variant = "fp16"\ncheck_interval_hours = -1\nfeed_url = "ftp://x"\n')
    user = write(tmp_path / "settings.json", "{not json")
    s = load_settings(admin, user)
    assert (s.variant, s.check_interval_hours, s.feed_url) == ("fp32", 6.0, "")  # defaults kept
    text = "\n".join(s.problems)
    assert "variant" in text and "check_interval_hours" in text and "feed_url" in text and "settings.json" in text
    broken = write(tmp_path / "broken.toml", 'feed_url = "https://x\nvariant = """int8\n')
    assert "unreadable" in load_settings(broken, tmp_path / "none.json").problems[-1]  # no line to leave out


def test_one_bad_line_in_the_admin_config_is_reported_and_the_rest_applies(tmp_path):
    """One unquoted URL used to drop the whole admin file: the feed, the trusted root and the locks."""
    admin = write(
        tmp_path / "etc" / "config.toml",
        'trusted_root = "root.json"\n'
        "proxy = http://proxy.hospital:3128\n"  # not quoted: not TOML
        'feed_url = "https://hub.example.org/feed"\n'
        'variant = "int8"\n'
        'variant = "fp32"\n'  # a key given twice
        'locked = ["feed_url"]\n',
    )
    user = write(tmp_path / "user" / "settings.json", json.dumps({"feed_url": "http://evil.example/feed"}))
    s = load_settings(admin, user)
    assert s.feed_url == "https://hub.example.org/feed" and s.locked == ("feed_url",) and s.variant == "int8"
    assert s.trusted_root == str((tmp_path / "etc" / "root.json").resolve()) and s.proxy == ""
    assert len(s.problems) == 2
    assert "line 2: setting 'proxy' is not valid TOML" in s.problems[0]
    assert "line 5: setting 'variant'" in s.problems[1] and "the rest of the file applies" in s.problems[1]


@pytest.mark.parametrize("locked", ["locked = [feed_url]", 'locked = ["feed_url", "colour"]'])
def test_an_unreadable_lock_list_locks_every_user_setting(tmp_path, locked):
    admin = write(tmp_path / "config.toml", f'feed_url = "https://hub.example.org/feed"\n{locked}\n')
    user = write(tmp_path / "settings.json", json.dumps({"feed_url": "http://evil.example/feed", "language": "fr"}))
    s = load_settings(admin, user)
    assert s.feed_url == "https://hub.example.org/feed" and s.language == "auto"  # the user changes nothing
    assert any("every user setting is locked" in p for p in s.problems)


def test_user_settings_are_saved_atomically_and_validated(tmp_path):
    admin = write(tmp_path / "config.toml", 'locked = ["variant"]\nvariant = "int8"\n')
    user = tmp_path / "cfg" / "settings.json"
    s = load_settings(admin, user)
    s2 = save_user_settings({"check_interval_hours": 12, "language": "fr"}, s)
    assert json.loads(user.read_text()) == {"check_interval_hours": 12.0, "language": "fr"}
    assert load_settings(admin, user).check_interval_hours == 12.0 == s2.check_interval_hours
    with pytest.raises(ConfigError, match="administrator"):
        save_user_settings({"variant": "fp32"}, s2)
    with pytest.raises(ConfigError, match="http"):
        save_user_settings({"feed_url": "hub.example.org"}, s2)
    assert json.loads(user.read_text()) == {"check_interval_hours": 12.0, "language": "fr"}  # nothing written
    assert [p.name for p in user.parent.iterdir()] == ["settings.json"]  # no temporary files left


def renumbered(package_dir: Path, dest: Path, version: int) -> Path:
    """A copy of the test package under another version number (the card is re-signed by write_card)."""
    from contract.package import write_card

    shutil.copytree(package_dir, dest)
    card = json.loads((dest / "model.json").read_text())
    card["version"] = version
    write_card(dest, card)
    return dest


def test_store_installs_switches_and_rolls_back(package_dir, tmp_path):
    store = ModelStore(tmp_path / "models", builtin=package_dir)
    assert store.installed() == {7: package_dir} and store.active_version() == 7
    assert store.previous_version() is None
    with pytest.raises(StoreError, match="no previous model"):
        store.rollback()
    v8 = renumbered(package_dir, tmp_path / "dl" / "8", 8)
    assert store.install(v8) == 8 and store.install(v8) == 8  # idempotent
    assert store.active_version() == 8  # newest, until told otherwise
    store.activate(8)
    engine, warnings = store.open_engine()
    assert engine.version == 8 and warnings == []
    assert store.rollback() == 7
    assert store.active_version() == 7 and store.newest_known() == 8  # the updater will not take 8 again
    assert store.open_engine()[0].version == 7
    assert store.previous_version() is None  # rolling back twice does not bounce back to 8


def test_store_falls_back_when_the_active_model_is_damaged(package_dir, tmp_path):
    store = ModelStore(tmp_path / "models", builtin=package_dir)
    store.install(renumbered(package_dir, tmp_path / "dl" / "8", 8))
    store.activate(8)
    onnx = tmp_path / "models" / "8" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")  # bit rot on disk
    engine, warnings = store.open_engine()
    assert engine.version == 7 and any("version 8" in w for w in warnings)
    (tmp_path / "models" / "state.json").write_text("{garbage")
    assert store.active_version() == 8  # unreadable state: the newest installed, without crashing


def test_store_refuses_a_tampered_package(package_dir, tmp_path):
    bad = Path(shutil.copytree(package_dir, tmp_path / "bad"))
    (bad / "model.onnx").write_bytes(b"not a model")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(StoreError, match="model.onnx"):
        store.install(bad)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    with pytest.raises(StoreError, match="No model is installed"):
        store.open_engine()


def test_a_newer_builtin_model_after_an_app_upgrade_is_used(package_dir, tmp_path):
    store = ModelStore(tmp_path / "models", builtin=package_dir)  # the app as first installed: built-in 7
    store.install(renumbered(package_dir, tmp_path / "dl" / "8", 8))
    store.activate(8)
    upgraded = ModelStore(tmp_path / "models", builtin=renumbered(package_dir, tmp_path / "app2" / "9", 9))
    assert upgraded.active_version() == 9 and upgraded.open_engine()[0].version == 9
    assert upgraded.rollback() == 8 and upgraded.active_version() == 8  # and rolling back still works


def test_a_rolled_back_version_never_comes_back(package_dir, tmp_path):
    store = ModelStore(tmp_path / "models", builtin=package_dir)

    def update_to(v: int) -> None:  # what the updater does: install, then activate
        store.install(renumbered(package_dir, tmp_path / "dl" / str(v), v))
        store.activate(v)

    update_to(8)
    update_to(9)
    assert store.rollback() == 8  # the radiologist rejects 9
    update_to(10)
    assert store.active_version() == 10 and store.previous_version() == 8
    assert store.rollback() == 8  # and rejects 10: back to 8, never to the rejected 9
    assert store.active_version() == 8 and store.open_engine()[0].version == 8
    # A damaged 8 falls back to 7, never to the rejected 9 or 10.
    onnx = tmp_path / "models" / "8" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-4] + b"rot!")
    engine, warnings = store.open_engine()
    assert engine.version == 7 and any("version 8" in w for w in warnings)


def test_a_rollback_survives_a_truncated_state_file(package_dir, tmp_path):
    """A truncated state.json silently brought back the model the radiologist had rolled back from."""
    models = tmp_path / "models"
    store = ModelStore(models, builtin=package_dir)
    store.install(renumbered(package_dir, tmp_path / "dl" / "8", 8))
    store.activate(8)
    assert store.rollback() == 7  # 8 is rejected
    state = models / "state.json"
    state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 2])  # a torn write, a bad sector
    restarted = ModelStore(models, builtin=package_dir)  # the next start of the app
    assert restarted.active_version() == 7 and restarted.newest_known() == 8  # 8 stays rejected
    engine, warnings = restarted.open_engine()
    assert engine.version == 7 and warnings == []
    assert json.loads(state.read_text())["skipped"] == [8]  # repaired from the backup
    # Both copies damaged: the newest model, and the app says the choices were lost.
    for name in ("state.json", "state.backup.json"):
        (models / name).write_text('{"active": 7, "skipped": [')
    engine, warnings = ModelStore(models, builtin=package_dir).open_engine()
    assert engine.version == 8 and "record of your model choices is damaged" in warnings[0]


@pytest.mark.parametrize(
    "text",
    [
        '{"active": 8, "history": null}',
        '{"active": "8"}',
        "[1, 2]",
        '{"active": 8, "skipped": "9"}',
        '{"active": true}',
    ],
)
def test_a_malformed_state_file_reads_as_no_choice(package_dir, tmp_path, text):
    store = ModelStore(tmp_path / "models", builtin=package_dir)
    store.install(renumbered(package_dir, tmp_path / "dl" / "8", 8))
    (tmp_path / "models" / "state.json").write_text(text)
    assert store.active_version() == 8 and store.previous_version() == 7  # the newest; nothing raises
    store.activate(8)
    assert json.loads((tmp_path / "models" / "state.json").read_text())["active"] == 8
