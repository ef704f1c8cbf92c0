"""The app's model store: the built-in package plus every version installed from the feed, one active.

Layout, in the per-user data folder (the install folder is never written)::

    models/<version>/     a verified package copied from the feed client's download
    models/state.json     {"active": 9, "history": [7, 8], "skipped": []}

``history`` is the stack "roll back to previous model" pops; a version rolled back from goes into
``skipped`` so the updater does not switch to it again (a newer version is taken as usual). The
state is written twice, ``state.json`` then ``state.backup.json``, each atomically and fsync'd with
its folder: a damaged or truncated ``state.json`` is read from the backup (and rewritten), so a
rollback decision survives one damaged file. When neither copy reads, the newest model is used and
``open_engine`` says the choices were lost (``ModelStore.state_problem``).
``open_engine`` loads the active version and, if it fails its checks, falls back to the newest
version that passes, saying so.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from contract.package import CARD, VARIANTS, ModelPackage, PackageError, sha256_of
from desktop_app.config import write_json_atomic

logger = logging.getLogger(__name__)

STATE = "state.json"
STATE_BACKUP = "state.backup.json"  # the same content, written after STATE


class StoreError(RuntimeError):
    """No usable model, or a package that cannot be installed; the message says why."""


class ModelStore:
    def __init__(self, root: str | os.PathLike, builtin: str | os.PathLike | None = None, site: str | None = None):
        self.root = Path(root)
        self.builtin = Path(builtin) if builtin else None
        self.site = site  # whose operating point the engines it opens use (``Engine``'s ``site``)
        self.state_problem = ""  # set by every read of the state: why the choices were lost, or ""

    @classmethod
    def from_settings(cls, settings) -> ModelStore:
        """The per-user store of the app as ``settings`` (``desktop_app.config``) describe it."""
        return cls(settings.paths().models, settings.builtin_model or None, settings.site)

    # ----- what is there --------------------------------------------------------------------
    def installed(self) -> dict[int, Path]:
        """Version → folder for every package whose card is readable (files are verified on load)."""
        found: dict[int, Path] = {}
        if self.builtin is not None:
            try:
                found[ModelPackage.load(self.builtin, verify=False).version] = self.builtin
            except PackageError as e:
                logger.warning("Built-in model %s unreadable: %s", self.builtin, e)
        if self.root.is_dir():
            for d in self.root.iterdir():
                if d.is_dir() and d.name.isdigit():
                    try:
                        pkg = ModelPackage.load(d, verify=False)
                    except PackageError as e:
                        logger.warning("Ignoring %s: %s", d, e)
                        continue
                    if pkg.version == int(d.name):
                        found[pkg.version] = d
        return dict(sorted(found.items()))

    @staticmethod
    def _read_state(path: Path) -> dict | None:
        """The state in ``path``; None when it does not exist; ValueError (saying why) when damaged."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ValueError(f"{path} is unreadable ({e})") from None

        def ints(value: object) -> bool:
            return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)

        active = raw.get("active") if isinstance(raw, dict) else "bad"
        if (
            not (active is None or (isinstance(active, int) and not isinstance(active, bool)))
            or not ints(raw.get("history", []))
            or not ints(raw.get("skipped", []))
        ):
            raise ValueError(f"{path} is malformed")
        return {"active": active, "history": list(raw.get("history", [])), "skipped": list(raw.get("skipped", []))}

    def _state(self) -> dict:
        """``{"active": int | None, "history": [int], "skipped": [int]}`` from ``state.json``, else from its
        backup (which then replaces it); both missing or damaged read as empty (``state_problem`` says)."""
        self.state_problem = ""
        problems = []
        for name in (STATE, STATE_BACKUP):
            try:
                state = self._read_state(self.root / name)
            except ValueError as e:
                problems.append(str(e))
                continue
            if state is None:
                continue
            if problems:  # the main copy was damaged: the backup holds the same decisions
                logger.warning("Model state: %s; using its backup %s", problems[0], self.root / name)
                try:
                    write_json_atomic(self.root / STATE, state)
                except OSError as e:
                    logger.warning("Cannot repair %s: %s", self.root / STATE, e)
            return state
        if problems:
            self.state_problem = (
                "The record of your model choices is damaged (" + "; ".join(problems) + "): using the newest "
                "model; if it is one you rolled back from, roll back again"
            )
            logger.warning("%s", self.state_problem)
        return {"active": None, "history": [], "skipped": []}

    def _save(self, state: dict) -> None:
        write_json_atomic(self.root / STATE, state)
        write_json_atomic(self.root / STATE_BACKUP, state)

    def _usable(self, state: dict, installed: dict[int, Path]) -> list[int]:
        """Installed versions not rolled back from, oldest first (all of them if every one was)."""
        return [v for v in installed if v not in state["skipped"]] or list(installed)

    def _active(self, state: dict, installed: dict[int, Path]) -> int | None:
        usable = self._usable(state, installed)
        newest = usable[-1] if usable else None
        if state["active"] in installed and (newest is None or state["active"] >= newest):
            return state["active"]
        return newest

    def active_version(self) -> int | None:
        """The chosen version, unless a newer one not rolled back from is installed (an app upgrade
        with a newer built-in model, or an update interrupted before it was activated): then that one."""
        return self._active(self._state(), self.installed())

    def newest_known(self) -> int | None:
        """The highest version installed or skipped: what the feed must beat to be offered."""
        versions = list(self.installed()) + self._state()["skipped"]
        return max(versions) if versions else None

    def _previous(self, state: dict, installed: dict[int, Path], active: int | None) -> int | None:
        """The last chosen version before ``active`` that is still installed and not rolled back from."""
        candidates = [state["active"], *reversed(state["history"])]
        for v in candidates:
            if v is not None and v != active and v in installed and v not in state["skipped"]:
                return v
        older = [v for v in installed if active is not None and v < active and v not in state["skipped"]]
        return older[-1] if older else None

    def previous_version(self) -> int | None:
        """What "roll back" would switch to, or None."""
        state, installed = self._state(), self.installed()
        return self._previous(state, installed, self._active(state, installed))

    def path(self, version: int) -> Path:
        try:
            return self.installed()[version]
        except KeyError:
            raise StoreError(f"Model version {version} is not installed") from None

    # ----- changing it ----------------------------------------------------------------------
    def install(self, package_dir: str | os.PathLike, variant: str | None = None) -> int:
        """Copy a package (verified against its card) into ``models/<version>``; return the version.

        ``variant``: the package may hold only what that variant needs (the feed client downloads no
        more); a copy of the same version already here gets the files it lacks, each renamed into its
        folder once copied, so the folder is a valid (partial) package at every moment.
        """
        try:
            pkg = ModelPackage.load(package_dir, variant=variant)
        except PackageError as e:
            raise StoreError(f"Cannot install {package_dir}: {e}") from None
        present = [n for n in pkg.card["files"] if pkg.path(n).is_file()]
        final = self.root / str(pkg.version)
        if final.is_dir():
            try:
                here = ModelPackage.load(final, verify=False)
                if here.card != pkg.card:
                    raise PackageError("its card differs from the one being installed")
                here.verify_present()
                gaps = here.missing()
                self._add_files(pkg, final, [n for n in present if n in gaps])
                ModelPackage.load(final, variant=variant)
                return pkg.version
            except PackageError as e:
                logger.warning("Replacing damaged copy of version %d in %s (%s)", pkg.version, final, e)
                shutil.rmtree(final)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self.root))
        try:
            for name in [*present, CARD]:
                shutil.copy2(pkg.path(name), staging / name)
            ModelPackage.load(staging, variant=variant)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return pkg.version

    @staticmethod
    def _add_files(pkg: ModelPackage, folder: Path, names: list[str]) -> None:
        """Copy ``names`` from ``pkg`` into the installed copy ``folder``; each is checked, then renamed in."""
        for name in names:
            part = folder / f".part-{name}"
            try:
                shutil.copy2(pkg.path(name), part)
                entry = pkg.card["files"][name]
                if part.stat().st_size != entry["size"] or sha256_of(part) != entry["sha256"]:
                    raise StoreError(f"{pkg.path(name)} changed while it was being installed")
                os.replace(part, folder / name)
            finally:
                part.unlink(missing_ok=True)

    @staticmethod
    def _other_forms(folder: Path, variant: str) -> list[str]:
        """The variants ``folder`` can run instead of ``variant`` when it lacks that one's files ([] when
        it has them, or has nothing else)."""
        try:
            pkg = ModelPackage.load(folder, verify=False)
        except PackageError:
            return []
        return [o for o in VARIANTS if o != variant and pkg.missing(variant) and not pkg.missing(o)]

    def missing(self, version: int, variant: str) -> list[str]:
        """The files ``variant`` needs that the installed copy of ``version`` does not have: [] for none,
        and for a version not installed or unreadable (loading it says what is wrong)."""
        try:
            return ModelPackage.load(self.path(version), verify=False).missing(variant)
        except (StoreError, PackageError):
            return []

    def damage(self, version: int) -> str:
        """Why the installed copy of ``version`` is damaged (a file whose size or sha256 is not the
        card's), or "" when it is sound or not installed (an unreadable card is not installed at all)."""
        folder = self.installed().get(version)
        if folder is None:
            return ""
        try:
            ModelPackage.load(folder, verify=False).verify_present()
        except (PackageError, OSError) as e:
            return str(e)
        return ""

    def is_skipped(self, version: int) -> bool:
        return version in self._state()["skipped"]

    def activate(self, version: int) -> None:
        """Make ``version`` the active model; the one in use before goes on the rollback history."""
        state, installed = self._state(), self.installed()
        if version not in installed:
            raise StoreError(f"Model version {version} is not installed")
        # What was in use: the chosen version, else the newest usable one other than the new one (the
        # new folder may already count as "newest" once installed).
        before = state["active"] if state["active"] in installed else None
        if before is None:
            others = [v for v in self._usable(state, installed) if v != version]
            before = others[-1] if others else None
        if before is not None and before != version:
            state["history"] = [v for v in state["history"] if v != before] + [before]
        state["history"] = [v for v in state["history"] if v != version]
        state["skipped"] = [v for v in state["skipped"] if v != version]
        state["active"] = version
        self._save(state)

    def allow(self, version: int) -> None:
        """Take ``version`` again after a rollback from it: no longer skipped by updates; installed,
        it is the newest usable model again (``active_version``)."""
        state = self._state()
        if version in state["skipped"]:
            state["skipped"] = [v for v in state["skipped"] if v != version]
            self._save(state)

    def skip(self, version: int) -> None:
        """Never use ``version`` unless chosen again (an installed copy that failed its checks)."""
        state = self._state()
        if version not in state["skipped"]:
            state["skipped"].append(version)
        if state["active"] == version:
            state["active"] = None
        self._save(state)

    def rollback(self) -> int:
        """Switch to the previous model; the current one is skipped by later updates. Returns the version."""
        state, installed = self._state(), self.installed()
        current = self._active(state, installed)
        previous = self._previous(state, installed, current)
        if previous is None:
            raise StoreError("There is no previous model to roll back to")
        state["history"] = [v for v in state["history"] if v not in (previous, current)]
        if current is not None and current not in state["skipped"]:
            state["skipped"].append(current)
        state["active"] = previous
        self._save(state)
        return previous

    # ----- loading --------------------------------------------------------------------------
    def open_engine(self, variant: str = "fp32", threads: int | None = None):
        """(Engine, warnings): the active model, or the newest one that passes its checks."""
        from desktop_app.engine import Engine, EngineError

        installed = self.installed()
        if not installed:
            raise StoreError("No model is installed: reinstall the app or connect to the model feed")
        state = self._state()
        active = self._active(state, installed)
        # Fall back to the newest that passes, never to a version the user rolled back from.
        order = [active] + [v for v in reversed(installed) if v != active and v not in state["skipped"]]
        warnings: list[str] = [self.state_problem] if self.state_problem else []
        for v in order:
            # The variant asked for, else the other one when only that was downloaded (the variant was
            # changed since): the same model in its other form beats an older model.
            tries = self._other_forms(installed[v], variant) or [variant]
            for form in tries:
                try:
                    engine = Engine(installed[v], form, threads, site=self.site)
                except EngineError as e:
                    warnings.append(f"Model version {v} ({form}) was not used: {e}")
                    logger.error("Model version %d (%s) refused: %s", v, form, e)
                    continue
                if v != active:
                    warnings.append(f"Using model version {v} instead")
                elif form != variant:
                    warnings.append(
                        f"Using model version {v} as {form}: its {variant} file is not downloaded yet "
                        "(the next update check fetches it)"
                    )
                return engine, warnings
        raise StoreError("No installed model passes its checks:\n" + "\n".join(warnings))


def open_model(model_dir: str | os.PathLike | None, variant: str | None, settings):
    """(Engine, warnings) for ``model_dir``, else for the per-user store's active model (the CLI and
    the viewer both start this way); raises EngineError or StoreError."""
    from desktop_app.engine import Engine

    variant = variant or settings.variant
    if model_dir:
        return Engine(model_dir, variant, site=settings.site), []
    return ModelStore.from_settings(settings).open_engine(variant)
