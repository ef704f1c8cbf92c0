"""Model › About this model: the running model's card as a radiologist or IT reads it — gold figures
per site with their confidence intervals, intended use, threshold and calibration, training data,
dates and source — from the real window and a real (random-init) package whose card carries the
hub's per-site metrics."""

from __future__ import annotations

import json
import os
import shutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from desktop_app.audit import AuditLog
from desktop_app.config import load_settings
from desktop_app.engine import Engine
from desktop_app.ui.app import build_window
from tests.conftest import ROOT

ARTIFACTS = ROOT / "test-artifacts"

SITES = {
    "pooled": {
        "n": 854,
        "accuracy": 0.906,
        "recall": 0.946,
        "specificity": 0.803,
        "roc_auc": 0.963,
        "patients": {"NORMAL": 167, "PNEUMONIA": 262},
        "ci": {
            "accuracy": [0.872, 0.936],
            "recall": [0.92, 0.968],
            "specificity": [0.71, 0.886],
            "roc_auc": [0.946, 0.977],
        },
    },
    "nih-cc": {
        "n": 60,
        "accuracy": 0.5,
        "recall": 0.957,
        "specificity": 0.216,
        "roc_auc": 0.719,
        "patients": {"NORMAL": 16, "PNEUMONIA": 16},
        "ci": {
            "accuracy": [0.333, 0.719],
            "recall": [0.85, 1.0],
            "specificity": [0.087, 0.394],
            "roc_auc": [0.557, 0.86],
        },
    },
}


@pytest.fixture
def measured_package(package_dir, tmp_path):
    """The test package with the card a hub export writes: per-site gold metrics, provenance, a site's
    operating point."""
    pkg = tmp_path / "pkg"
    shutil.copytree(package_dir, pkg)
    card = json.loads((pkg / "model.json").read_text())
    card["metrics"] = {**card["metrics"], **SITES["pooled"], "sites": SITES}
    card["provenance"] = {
        "registered_model": "pneumoscan-resnet18",
        "registered_version": "4",
        "dataset_version": "ds-0354f2d96368a690",
        "dvc_md5": "1f2e3d4c.dir",
        "mlflow_run_id": "e0a625a956eb4b52afe43c659352faaa",
        "git_commit": "48612d5c0ffee",
    }
    card["operating_points"] = {"nih-cc": {"temperature": 1.8, "threshold": 0.37, "n_val": 77}}
    (pkg / "model.json").write_text(json.dumps(card))
    return pkg


def test_about_this_model_shows_the_cards_measured_figures_per_site_and_where_it_came_from(
    qtbot, measured_package, tmp_path
):
    admin = tmp_path / "admin" / "config.toml"
    admin.write_text(f'builtin_model = {json.dumps(str(measured_package))}\nsite = "nih-cc"\n')
    settings = load_settings()
    engine = Engine(measured_package, site="nih-cc")
    audit = AuditLog(tmp_path / "audit.sqlite")
    window = build_window(engine, audit, settings, managed_model=True)
    qtbot.addWidget(window)
    window.show()
    try:
        (about,) = [a for a in window.model_menu.actions() if a.text() == "About this model…"]
        assert window.model_menu.actions()[0] is about  # first in the menu, with or without updates
        about.trigger()
        dialog = window.about_dialog
        qtbot.waitExposed(dialog)
        text = dialog.text()
        assert dialog.windowTitle() == f"About model version {engine.version}"
        assert "For investigational use — not a diagnosis" in text
        # each site's figures with their 95 % intervals, as the hub measured them
        assert "nih-cc\n60\n16/16\n0.500 (0.333–0.719)\n0.957 (0.850–1.000)\n0.216 (0.087–0.394)" in text
        assert "all sites\n854\n167/262\n0.906 (0.872–0.936)" in text
        assert "site nih-cc's operating point" in text and "threshold 37.0 %, temperature 1.8 (from 77" in text
        assert "ds-0354f2d96368a690" in text and "pneumoscan-resnet18 version 4" in text and "48612d5c0ffe" in text
        assert "installed with the app" in text and "2026-11-27 12:00:00 UTC" in text
        ARTIFACTS.mkdir(exist_ok=True)
        dialog.grab().save(str(ARTIFACTS / "about-model.png"))
    finally:
        window.close()
        audit.close()


def test_about_this_model_is_there_with_a_model_dir_too(qtbot, package_dir, tmp_path):
    """Before: with --model-dir the Model menu was empty. A card without per-site figures shows the pooled ones."""
    audit = AuditLog(tmp_path / "audit.sqlite")
    window = build_window(Engine(package_dir), audit, load_settings(), managed_model=False)
    qtbot.addWidget(window)
    try:
        assert [a.text() for a in window.model_menu.actions()] == ["About this model…"]
        window.model_menu.actions()[0].trigger()
        text = window.about_dialog.text()
        assert "the folder given with --model-dir (updates are off)" in text
        assert "all sites\n—\n—\n0.500" in text  # the random test model's card: accuracy only, no CIs
    finally:
        window.close()
        audit.close()
