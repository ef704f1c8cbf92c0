"""The hub settings file: what every automatic run trains with and judges by.

``$PNEUMO_HOME/hub.toml`` (``PNEUMO_SETTINGS`` names another file) has three tables:

* ``[train]``: ``hub.config.TrainConfig`` fields (epochs, image_size, weights, ...);
* ``[cycle]``: ``warm_start``, ``settle_seconds``, ``target_sensitivity``;
* ``[policy]``: ``hub.policy.Policy`` fields (the promotion floors).

A cycle's settings are layered, later wins: the built-in defaults, this file, the environment
variables (``PNEUMO_POLICY``, ``PNEUMO_WARM_START``, ``PNEUMO_BATCH_SETTLE_SECONDS``), then the
run's own settings (a DAG run's conf, ``pneumo-hub cycle --settings``). Asset- and cron-triggered
runs have no conf, so this file is how an operator configures them.

The file is written on first use (``pneumo-hub up``, ``cycle``, or the first task of a run) with
every default spelled out, and ``weights`` chosen from what this machine really has: ``imagenet``
when torchvision's ResNet18 ImageNet file is in its cache, otherwise ``none`` (random
initialisation), said in the file and by ``up``. It is never rewritten after that: edit it, and the
next run uses it. An unreadable file, an unknown table or key, or a value of the wrong type is a
``SettingsError`` naming the file: a retry cannot fix it, so the DAG fails such a task at once.

Torch-free: the ImageNet cache path is worked out the way ``torch.hub.get_dir`` does.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import tomllib
from pathlib import Path

from hub.config import HubPaths, SettingsError, TrainConfig, env_value

FILE_NAME = "hub.toml"
IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1
CYCLE_KEYS = {"warm_start": False, "settle_seconds": 60.0, "target_sensitivity": 0.95}


def settings_file(paths: HubPaths) -> Path:
    value = env_value("PNEUMO_SETTINGS")
    return Path(value).expanduser() if value else paths.home / FILE_NAME


def imagenet_file() -> Path:
    """Where torchvision looks for the ResNet18 ImageNet weights (``$TORCH_HOME``, else the XDG cache)."""
    torch_home = env_value("TORCH_HOME") or os.path.join(env_value("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints" / IMAGENET_FILE


def default_weights() -> tuple[str, str]:
    """``imagenet`` when its file is here, else ``none``; and the reason, for the file and for ``up``."""
    f = imagenet_file()
    if f.is_file():
        return "imagenet", f"ImageNet weights found at {f}"
    return "none", f"no ImageNet weights at {f} (this hub is offline): training starts from random initialisation"


def check_weights(weights: str, where: str) -> None:
    """Fail before any training starts when ``weights`` cannot be loaded here; ``where`` names the setting."""
    if weights == "imagenet" and not imagenet_file().is_file():
        raise SettingsError(
            f"weights = 'imagenet' ({where}) but ImageNet weights for ResNet18 are not at {imagenet_file()} and "
            f"this machine is offline: copy {IMAGENET_FILE} there, or set weights = 'none' (random "
            f"initialisation) or a path to a .pt state dict"
        )
    if weights not in ("imagenet", "none") and not Path(weights).expanduser().is_file():
        raise SettingsError(f"weights = {weights!r} ({where}): no such file")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _default_text() -> str:
    from hub.policy import Policy

    weights, why = default_weights()
    lines = [
        "# PneumoScan hub settings: what every automatic (asset- or cron-triggered) cycle uses.",
        "# Written once with the defaults; edit freely, the next run reads it. Later wins: this file,",
        "# then PNEUMO_POLICY / PNEUMO_WARM_START / PNEUMO_BATCH_SETTLE_SECONDS, then a run's own settings.",
        "",
        "[train]",
        f"# weights: {why}",
    ]
    for f in dataclasses.fields(TrainConfig):
        value = weights if f.name == "weights" else f.default
        lines.append(
            f"# {f.name} = 1000  (unset: every image)" if value is None else f"{f.name} = {_toml_value(value)}"
        )
    lines += ["", "[cycle]"] + [f"{k} = {_toml_value(v)}" for k, v in CYCLE_KEYS.items()]
    lines += ["", "[policy]"]
    for f in dataclasses.fields(Policy):
        lines.append(f"# {f.name} =  (unset: off)" if f.default is None else f"{f.name} = {_toml_value(f.default)}")
    return "\n".join(lines) + "\n"


def ensure(paths: HubPaths) -> tuple[Path, bool]:
    """The settings file, written with the defaults when there is none; and whether it was just written.

    Never replaces a file that exists, even when two workers start at once (the first link wins)."""
    target = settings_file(paths)
    if target.exists():
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".hub-settings-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_default_text())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return target, False
    finally:
        os.unlink(tmp)
    return target, True


def load(paths: HubPaths) -> dict:
    """The file's settings as one flat dict (``policy`` nested), for ``CycleConfig.from_env``."""
    from hub.policy import Policy

    target, _ = ensure(paths)
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SettingsError(f"Cannot read the hub settings {target}: {e}") from None
    allowed = {
        "train": {f.name for f in dataclasses.fields(TrainConfig)},
        "cycle": set(CYCLE_KEYS),
        "policy": {f.name for f in dataclasses.fields(Policy)},
    }
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise SettingsError(f"{target}: unknown table(s) {unknown}; the tables are [train], [cycle] and [policy]")
    flat: dict = {}
    for table, keys in allowed.items():
        section = data.get(table, {})
        if not isinstance(section, dict):
            raise SettingsError(f"{target}: {table} must be a table ([{table}])")
        bad = sorted(set(section) - keys)
        if bad:
            raise SettingsError(f"{target}: unknown key(s) {bad} in [{table}]; supported: {', '.join(sorted(keys))}")
        if table == "policy":
            flat["policy"] = dict(section)
        else:
            flat.update(section)
    return flat
