"""Where the app keeps things, and its settings: an admin config file IT can pre-set, then per-user choices.

Two layers, the first existing admin file and then the user's ``settings.json``:

* **Admin config** (TOML, read-only for the app): the first that exists of ``$PNEUMO_DESKTOP_CONFIG``,
  the machine-wide file (``/etc/pneumoscan/config.toml``, ``%PROGRAMDATA%\\PneumoScan\\config.toml``),
  and ``config.toml`` next to the installed app. It may set every key, give paths relative to
  itself, and ``locked = ["feed_url", ...]`` keys users cannot change.
* **User settings** (JSON, written by the settings dialog): ``settings.json`` in the per-user config
  folder; only the user-settable keys, and only those not locked.

Nothing here raises for a bad file: ``load_settings`` returns the defaults it could not replace and
a list of ``problems`` in words (the app shows them; ``pneumo-desktop self-test`` fails on them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import tomllib
from pathlib import Path

from contract.atomic import write_atomic
from contract.package import VARIANTS

logger = logging.getLogger(__name__)

CONFIG_ENV = "PNEUMO_DESKTOP_CONFIG"  # admin config file
DATA_ENV = "PNEUMO_DESKTOP_DATA"  # per-user data folder (models, feed cache, audit log, logs)
USER_CONFIG_ENV = "PNEUMO_DESKTOP_USER_CONFIG"  # per-user settings.json
APP = "pneumoscan"

LANGUAGES = ("auto", "en", "fr")
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # the hub's rule (hub.pool.check_site)
USER_KEYS = ("feed_url", "check_interval_hours", "variant", "language", "show_withheld")
PATH_KEYS = ("trusted_root", "builtin_model", "data_dir")


class ConfigError(ValueError):
    """A setting with a wrong value; the message names the key and the source."""


@dataclasses.dataclass
class Settings:
    feed_url: str = ""  # the model feed, e.g. https://hub.example.org/feed; empty: never check
    check_interval_hours: float = 6.0  # 0: check only at start
    variant: str = "fp32"  # fp32 or int8 model
    language: str = "auto"  # auto (OS locale), en or fr
    # an expert's choice: also show the model's result on an image it withheld as unsuitable, marked so
    show_withheld: bool = False
    proxy: str = ""  # http(s) proxy for the feed, e.g. http://proxy.hospital:3128
    site: str = "clinic"  # this hospital's site name in the hub's data (labelled batches), e.g. "nih-cc"
    # the key of the pseudonymous patient keys in labelled batches: the same on every PC of the site
    patient_key_secret: str = ""
    trusted_root: str = ""  # the feed's TUF root.json (installed with the app)
    builtin_model: str = ""  # the model package installed with the app
    data_dir: str = ""  # per-user data folder override
    locked: tuple[str, ...] = ()  # user-settable keys the admin fixed
    # Not settings: where each value came from, and what was wrong with the files.
    admin_file: str = ""
    user_file: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)

    def user_values(self) -> dict:
        return {k: getattr(self, k) for k in USER_KEYS}

    def paths(self) -> AppPaths:
        return AppPaths.resolve(self.data_dir or None)


def _check(key: str, value: object) -> object:
    """The value, converted and checked, or ``ConfigError``."""
    if key == "site":
        if not isinstance(value, str) or not SITE_NAME.match(value):
            raise ConfigError(f"site must be lower-case letters, digits, '.', '_' or '-' (e.g. nih-cc), not {value!r}")
        return value
    if key == "patient_key_secret":
        if not isinstance(value, str) or (value and len(value) < 16):
            raise ConfigError("patient_key_secret must be a string of at least 16 characters (or empty)")
        return value
    if key in ("feed_url", "proxy", *PATH_KEYS):
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not {value!r}")
        value = value.strip()
        if key in ("feed_url", "proxy") and value and not value.startswith(("http://", "https://")):
            raise ConfigError(f"{key} must start with http:// or https://, not {value!r}")
        return value
    if key == "check_interval_hours":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 24 * 30:
            raise ConfigError(f"check_interval_hours must be a number of hours from 0 to 720, not {value!r}")
        return float(value)
    if key == "variant":
        if value not in VARIANTS:
            raise ConfigError(f"variant must be one of {', '.join(VARIANTS)}, not {value!r}")
        return value
    if key == "language":
        if value not in LANGUAGES:
            raise ConfigError(f"language must be one of {', '.join(LANGUAGES)}, not {value!r}")
        return value
    if key == "show_withheld":
        if not isinstance(value, bool):
            raise ConfigError(f"show_withheld must be true or false, not {value!r}")
        return value
    if key == "locked":
        if not isinstance(value, list) or not all(v in USER_KEYS for v in value):
            raise ConfigError(f"locked must be a list of {', '.join(USER_KEYS)}, not {value!r}")
        return tuple(value)
    raise ConfigError(f"unknown setting {key!r}")


def app_dir() -> Path:
    """The folder of the installed app: the PyInstaller bundle's folder, or the source tree's root."""
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent
    return Path(__file__).resolve().parent.parent


def bundled_resources() -> Path:
    """Where an installed bundle keeps the built-in model and root.json (``<app>/resources``)."""
    return app_dir() / "resources"


def admin_candidates() -> list[Path]:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return [Path(env)]  # an explicit file wins outright, even if missing (reported as a problem)
    if sys.platform == "win32":
        machine = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "PneumoScan" / "config.toml"
    elif sys.platform == "darwin":
        machine = Path("/Library/Application Support/PneumoScan/config.toml")
    else:
        machine = Path("/etc/pneumoscan/config.toml")
    return [machine, app_dir() / "config.toml"]


def user_settings_file() -> Path:
    env = os.environ.get(USER_CONFIG_ENV)
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "PneumoScan"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Preferences" / "PneumoScan"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP
    return base / "settings.json"


def _default_data_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "PneumoScan"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "PneumoScan"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / APP


def make_private(path: Path, folder: bool = False) -> None:
    """Create ``path`` (a folder, or an empty file) readable by this user only — 0700 / 0600 whatever
    the umask — or tighten it if it exists, is ours and others could read it. The data folder holds
    the audit log, whose file names carry patient names. Best effort: a folder that cannot be
    created here is reported by whatever writes into it."""
    if os.name != "posix":
        return  # Windows: the per-user profile folder's ACL already keeps other users out
    try:
        if folder:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        st = path.stat()
        want = 0o700 if folder else 0o600
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(want)
    except OSError:
        pass


@dataclasses.dataclass(frozen=True)
class AppPaths:
    """The per-user data folder: models from the feed, the feed's metadata cache, audit log, logs."""

    data_dir: Path

    @classmethod
    def resolve(cls, configured: str | os.PathLike | None = None) -> AppPaths:
        """``$PNEUMO_DESKTOP_DATA`` (one process: a test, ``install.sh --verify``), else the admin
        config's ``data_dir``, else the per-user default."""
        env = os.environ.get(DATA_ENV)
        paths = cls(Path(env or configured or _default_data_dir()).expanduser())
        make_private(paths.data_dir, folder=True)
        return paths

    @property
    def models(self) -> Path:
        return self.data_dir / "models"

    @property
    def feed_cache(self) -> Path:
        return self.data_dir / "feed"

    @property
    def patient_key_file(self) -> Path:
        """The key of the pseudonymous patient keys when the admin config gives none (this PC only)."""
        return self.data_dir / "patient-key.secret"

    @property
    def audit_db(self) -> Path:
        return self.data_dir / "audit.sqlite"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "pneumoscan.log"


_TOML_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
MAX_BAD_LINES = 20  # more than that and the file is not an admin config with a typo: ignore it whole


def _parse_admin(text: str, path: Path, problems: list[str]) -> tuple[dict, list[str]]:
    """The TOML ``text`` as a dict, its lines that do not parse left out: ``(values, bad keys)``.

    One bad line (a URL without quotes, a duplicated key) used to drop the whole file, and with it the
    feed, the trusted root and the locks. Each line the parser stops at is reported with its key and
    blanked, and the rest parsed again; an error with no line (or more than ``MAX_BAD_LINES``) ignores
    the file as before. Raises ``tomllib.TOMLDecodeError`` then.
    """
    lines = text.splitlines()
    bad: list[str] = []
    first_error: tomllib.TOMLDecodeError | None = None
    while True:
        try:
            raw = tomllib.loads("\n".join(lines))
        except tomllib.TOMLDecodeError as e:
            first_error = first_error or e
            m = _TOML_LINE.search(str(e))
            n = int(m.group(1)) if m else 0
            if not 1 <= n <= len(lines) or not lines[n - 1].strip() or len(bad) == MAX_BAD_LINES:
                raise first_error from None
            key = _TOML_KEY.match(lines[n - 1])
            bad.append(key.group(1) if key else "")
            what = f"setting {key.group(1)!r}" if key else repr(lines[n - 1].strip()[:60])
            problems.append(
                f"Admin config {path} line {n}: {what} is not valid TOML ({_TOML_LINE.sub('', str(e))}); "
                "ignored, the rest of the file applies"
            )
            lines[n - 1] = ""
            continue
        return raw, bad


def _read_admin(path: Path, settings: Settings) -> None:
    try:
        raw, bad = _parse_admin(path.read_text(encoding="utf-8"), path, settings.problems)
    except FileNotFoundError:
        settings.problems.append(f"Admin config {path} does not exist")
        return
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        settings.problems.append(f"Admin config {path} is unreadable and was ignored: {e}")
        return
    settings.admin_file = str(path)
    if "locked" in bad:  # fail safe: the admin meant to lock something; users change nothing
        raw.pop("locked", None)
        settings.locked = USER_KEYS
        settings.problems.append(f"Admin config {path}: locked is unreadable, so every user setting is locked")
    for key, value in raw.items():
        if key in ("admin_file", "user_file", "problems"):
            settings.problems.append(f"Admin config {path}: unknown setting {key!r} ignored")
            continue
        try:
            value = _check(key, value)
        except ConfigError as e:
            if key == "locked":
                value = USER_KEYS
                settings.problems.append(f"Admin config {path}: {e}; every user setting is locked instead")
            else:
                settings.problems.append(f"Admin config {path}: {e}; ignored")
                continue
        if key in PATH_KEYS and value:
            value = str((path.parent / Path(value).expanduser()).resolve())
        setattr(settings, key, value)


def _read_user(path: Path, settings: Settings) -> None:
    settings.user_file = str(path)  # where the settings dialog saves, whether or not it exists yet
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        settings.problems.append(f"Your settings file {path} is unreadable and was ignored: {e}")
        return
    if not isinstance(raw, dict):
        settings.problems.append(f"Your settings file {path} is not a JSON object and was ignored")
        return
    for key, value in raw.items():
        if key not in USER_KEYS or key in settings.locked:
            continue  # admin-only or locked keys are not the user's to set
        try:
            setattr(settings, key, _check(key, value))
        except ConfigError as e:
            settings.problems.append(f"Your settings file {path}: {e}; ignored")


def load_settings(admin_file: str | os.PathLike | None = None, user_file: str | os.PathLike | None = None) -> Settings:
    """Defaults, then the first existing admin config, then the user's settings (never raises)."""
    settings = Settings()
    if admin_file is not None:
        _read_admin(Path(admin_file), settings)
    else:
        candidates = admin_candidates()
        found = next((p for p in candidates if p.is_file()), None)
        if found is not None or os.environ.get(CONFIG_ENV):
            _read_admin(found or candidates[0], settings)
    res = bundled_resources()
    if not settings.trusted_root and (res / "root.json").is_file():
        settings.trusted_root = str(res / "root.json")
    if not settings.builtin_model and (res / "model" / "model.json").is_file():
        settings.builtin_model = str(res / "model")
    _read_user(Path(user_file) if user_file is not None else user_settings_file(), settings)
    return settings


def save_user_settings(values: dict, settings: Settings, user_file: str | os.PathLike | None = None) -> Settings:
    """Check ``values`` (user keys only, none locked), write them atomically; return the new settings.

    Raises ``ConfigError`` and writes nothing when a value is wrong or locked.
    """
    checked = {}
    for key, value in values.items():
        if key not in USER_KEYS:
            raise ConfigError(f"{key} is not a user setting")
        if key in settings.locked and value != getattr(settings, key):
            raise ConfigError(f"{key} is set by your administrator")
        checked[key] = _check(key, value)
    path = Path(user_file or settings.user_file or user_settings_file())
    current = {}
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
        current = current if isinstance(current, dict) else {}
    except (OSError, ValueError):
        pass
    current.update({k: v for k, v in checked.items() if k not in settings.locked})
    write_json_atomic(path, current)
    new = dataclasses.replace(settings, problems=list(settings.problems), user_file=str(path))
    for k, v in checked.items():
        setattr(new, k, v)
    return new


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON so that a crash mid-write never leaves a half-written file."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
