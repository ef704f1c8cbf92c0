"""Model › About this model: what the running model is, what it was measured to do and where it came
from, read from its signed card (``model.json``): intended use, the gold-set figures per site with
their 95 % confidence intervals, the operating threshold and calibration, the suitability guard,
the training data's version, the dates and the source (built in, a folder, or the feed)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from desktop_app.ui.format import percent

# The figures shown per site, in this order (the hub's ``hub.evaluate.CI_METRICS`` and more).
SITE_METRICS = ("accuracy", "recall", "specificity", "roc_auc")


translate = QCoreApplication.translate  # lupdate finds the strings by this name: translate("AboutModel", …)


def _number(v) -> str:
    try:
        return f"{float(v):.3f}"
    except (TypeError, ValueError):
        return "—"


def _cell(m: dict, key: str) -> str:
    if key not in m:
        return "—"
    ci = (m.get("ci") or {}).get(key)
    return _number(m[key]) + (f" ({_number(ci[0])}–{_number(ci[1])})" if ci and len(ci) == 2 else "")


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)


def sites_table(metrics: dict) -> str:
    """The card's gold metrics as an HTML table: one row per site (``metrics["sites"]``, pooled first),
    each figure with its 95 % CI; without per-site figures, the pooled ones alone."""
    sites = metrics.get("sites") or {"pooled": metrics}
    names = {
        "accuracy": translate("AboutModel", "accuracy"),
        "recall": translate("AboutModel", "sensitivity"),
        "specificity": translate("AboutModel", "specificity"),
        "roc_auc": translate("AboutModel", "ROC AUC"),
    }
    head = "".join(f"<th>{html.escape(names[k])}</th>" for k in SITE_METRICS)
    body = []
    for site, m in sites.items():
        pts = m.get("patients") or {}
        patients = f"{pts.get('NORMAL', '?')}/{pts.get('PNEUMONIA', '?')}" if pts else "—"
        label = translate("AboutModel", "all sites") if site == "pooled" else site
        cells = "".join(f"<td>{html.escape(_cell(m, k))}</td>" for k in SITE_METRICS)
        body.append(f"<tr><td>{html.escape(label)}</td><td>{m.get('n', '—')}</td><td>{patients}</td>{cells}</tr>")
    first = [
        translate("AboutModel", "site"),
        translate("AboutModel", "images"),
        translate("AboutModel", "patients (N/P)"),
    ]
    return (
        "<table border='1' cellspacing='0' cellpadding='4'><tr>"
        + "".join(f"<th>{html.escape(t)}</th>" for t in first)
        + f"{head}</tr>"
        + "".join(body)
        + "</table>"
    )


def about_html(engine, source: str) -> str:
    """Everything the dialog shows, as HTML (also what the tests read)."""
    card = engine.package.card
    prov = card.get("provenance") or {}
    folder = Path(engine.package.directory)
    try:
        installed = datetime.fromtimestamp(folder.stat().st_mtime, UTC).strftime("%Y-%m-%d")
    except OSError:
        installed = "—"
    points = card.get("operating_points") or {}
    used = engine.operating_point
    calibration = [
        (
            translate("AboutModel", "Operating threshold"),
            translate("AboutModel", "%1 (PNEUMONIA at or above)").replace("%1", percent(card["threshold"])),
        ),
        (
            translate("AboutModel", "Calibration"),
            translate("AboutModel", "temperature %1, fitted on the validation images").replace(
                "%1", f"{card['temperature']:.3g}"
            ),
        ),
    ]
    for name, point in sorted(points.items()):
        calibration.append(
            (
                translate("AboutModel", "Site %1").replace("%1", name),
                translate("AboutModel", "threshold %1, temperature %2 (from %3 validation images)")
                .replace("%1", percent(point["threshold"]))
                .replace("%2", f"{point['temperature']:.3g}")
                .replace("%3", str(point.get("n_val", "?"))),
            )
        )
    calibration.append(
        (
            translate("AboutModel", "This computer uses"),
            translate("AboutModel", "the pooled operating point")
            if used == "pooled"
            else translate("AboutModel", "site %1's operating point").replace("%1", used),
        )
    )
    suit = card.get("suitability") or {}
    threshold = (
        suit.get("threshold_int8") if engine.variant == "int8" and suit.get("threshold_int8") else suit.get("threshold")
    )
    origin = [
        (translate("AboutModel", "Created"), str(card.get("created_at", "—"))[:19].replace("T", " ") + " UTC"),
        (translate("AboutModel", "Installed on this computer"), installed),
        (translate("AboutModel", "Source"), source),
        (translate("AboutModel", "Folder"), str(folder)),
        (translate("AboutModel", "Training data"), str(prov.get("dataset_version") or "—")),
        (translate("AboutModel", "Data version (DVC)"), str(prov.get("dvc_md5") or "—")),
        (
            translate("AboutModel", "Registry"),
            f"{prov.get('registered_model', '—')} version {prov.get('registered_version', '—')}",
        ),
        (translate("AboutModel", "Training run (MLflow)"), str(prov.get("mlflow_run_id") or "—")),
        (translate("AboutModel", "Code version"), str(prov.get("git_commit") or "—")[:12]),
    ]
    heads = {
        k: html.escape(v)
        for k, v in (
            ("use", translate("AboutModel", "Intended use")),
            ("measured", translate("AboutModel", "Measured on the gold sets (95 % confidence intervals)")),
            ("calib", translate("AboutModel", "Threshold and calibration")),
            ("suit", translate("AboutModel", "Suitability check")),
            ("origin", translate("AboutModel", "Origin")),
        )
    }
    title = (
        translate("AboutModel", "Model version %1 (%2)")
        .replace("%1", str(engine.version))
        .replace("%2", engine.variant)
    )
    return (
        f"<h2>{html.escape(title)}</h2>"
        f"<h3>{heads['use']}</h3><p>"
        + html.escape(
            translate(
                "AboutModel",
                "A second opinion on frontal chest X-rays (PA or AP views): NORMAL or PNEUMONIA with a calibrated "
                "probability and a heat map of the evidence. For investigational use — not a diagnosis: a "
                "radiologist reads every image. Images the model is not fit to judge (other body parts or "
                "modalities, lateral views, images unlike its training data) get no result.",
            )
        )
        + "</p>"
        f"<h3>{heads['measured']}</h3>"
        + sites_table(card.get("metrics") or {})
        + "<p>"
        + html.escape(
            translate(
                "AboutModel",
                "Gold sets are patients kept out of training at each hospital; a site not listed was not "
                "measured, and results there may differ.",
            )
        )
        + "</p>"
        + f"<h3>{heads['calib']}</h3>"
        + f"<table>{_rows(calibration)}</table>"
        f"<h3>{heads['suit']}</h3><table>"
        + _rows(
            [
                (translate("AboutModel", "Method"), str(suit.get("method", "—"))),
                (
                    translate("AboutModel", "Out-of-distribution threshold"),
                    _number(threshold) if threshold is not None else "—",
                ),
            ]
        )
        + f"</table><h3>{heads['origin']}</h3><table>{_rows(origin)}</table>"
    )


class AboutModelDialog(QDialog):
    """The running model's card, readable (non-modal; one per request)."""

    def __init__(self, engine, source: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(translate("AboutModel", "About model version %1").replace("%1", str(engine.version)))
        self.resize(760, 640)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setHtml(about_html(engine, source))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.browser)
        lay.addWidget(buttons)

    def text(self) -> str:
        return self.browser.toPlainText()


def model_source(engine, settings, managed: bool) -> str:
    """Where the running model came from, for the dialog."""
    folder = Path(engine.package.directory).resolve()
    if not managed:
        return translate("AboutModel", "the folder given with --model-dir (updates are off)")
    builtin = Path(settings.builtin_model).resolve() if settings.builtin_model else None
    if builtin is not None and (folder == builtin or builtin in folder.parents):
        return translate("AboutModel", "installed with the app")
    if settings.feed_url:
        return translate("AboutModel", "the model feed %1 (signed, verified on download)").replace(
            "%1", settings.feed_url
        )
    return translate("AboutModel", "the app's model store")


def attach(window, source) -> QAction:
    """Put Model › About this model… first in ``window.model_menu``; ``source(engine)`` says where a model
    came from. Each use opens a fresh dialog on the model running then."""
    action = QAction(translate("AboutModel", "About this model…"), window)

    def show() -> None:
        window.about_dialog = AboutModelDialog(window.engine, source(window.engine), window)
        window.about_dialog.show()

    action.triggered.connect(show)
    first = window.model_menu.actions()[0] if window.model_menu.actions() else None
    window.model_menu.insertAction(first, action)
    if first is not None:
        window.model_menu.insertSeparator(first)
    return action
