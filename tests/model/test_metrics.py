"""Metrics agree with an independent computation (scikit-learn) on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from hub import evaluate as ev

Y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
P = np.array([0.05, 0.2, 0.35, 0.5, 0.5, 0.8, 0.3, 0.5, 0.55, 0.6, 0.7, 0.7, 0.8, 0.9, 0.95, 0.99])  # ties on purpose


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.65, 0.9])
def test_confusion_based_metrics_match_sklearn(threshold):
    m = ev.compute_metrics(Y, P, threshold)
    pred = (P >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(Y, pred).ravel()
    assert (m.tn, m.fp, m.fn, m.tp) == (tn, fp, fn, tp)
    assert m.accuracy == pytest.approx(skm.accuracy_score(Y, pred))
    assert m.precision == pytest.approx(skm.precision_score(Y, pred, zero_division=0))
    assert m.recall == pytest.approx(skm.recall_score(Y, pred))
    assert m.specificity == pytest.approx(skm.recall_score(Y, pred, pos_label=0))
    assert m.f1 == pytest.approx(skm.f1_score(Y, pred, zero_division=0))
    assert m.roc_auc == pytest.approx(skm.roc_auc_score(Y, P))
    assert (m.confusion() == skm.confusion_matrix(Y, pred)).all()


def test_roc_curve_matches_sklearn():
    fpr, tpr, _ = ev.roc_curve(Y, P)
    sk_fpr, sk_tpr, _ = skm.roc_curve(Y, P, drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)


def test_ece_by_hand():
    # two bins used: confidence 0.9 (3 right of 4) and 0.6 (1 right of 2), 6 samples
    y = np.array([1, 1, 1, 0, 0, 1])
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.4, 0.4])  # p<0.5 predicts NORMAL with confidence 0.6
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(0.5 - 0.6)
    assert ev.expected_calibration_error(y, p, n_bins=10) == pytest.approx(expected)


def test_single_class_auc_is_nan_not_an_error():
    assert np.isnan(ev.compute_metrics(np.ones(4), np.array([0.2, 0.4, 0.6, 0.8])).roc_auc)


def test_temperature_scaling_recovers_overconfidence():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(4000, 2))
    y = (rng.random(4000) < ev.softmax(z)[:, 1]).astype(int)
    t = ev.fit_temperature(3.0 * z, y)  # logits three times too confident
    assert t == pytest.approx(3.0, rel=0.1)
    assert ev.nll(3.0 * z, y, t) < ev.nll(3.0 * z, y, 1.0)


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95, 1.0])
def test_threshold_reaches_target_sensitivity_and_is_the_highest_that_does(target):
    t = ev.threshold_for_sensitivity(Y, P, target)
    assert ev.compute_metrics(Y, P, t).recall >= target
    higher = np.nextafter(t, 1)
    assert ev.compute_metrics(Y, P, higher).recall < target


def test_plots_are_written(tmp_path):
    m = ev.compute_metrics(Y, P, 0.5)
    for path in (
        ev.plot_confusion(m, tmp_path / "cm.png"),
        ev.plot_roc(Y, P, tmp_path / "roc.png", m),
        ev.plot_reliability(Y, P, tmp_path / "rel.png", p_uncalibrated=P**2),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_per_site_metrics_with_patient_level_bootstrap_intervals():
    from hub.evaluate import metrics_by_site, site_table

    rng = np.random.default_rng(0)
    # site A: 40 patients, 2 images each, a good model; site B: 30 patients, one image each, a poor one
    ya = np.repeat(rng.integers(0, 2, 40), 2)
    pa = np.clip(ya * 0.7 + rng.normal(0.15, 0.1, len(ya)), 0, 1)
    yb = rng.integers(0, 2, 30)
    pb = rng.random(30)
    y, p = np.r_[ya, yb], np.r_[pa, pb]
    sites = ["a"] * len(ya) + ["b"] * len(yb)
    patients = [f"a{i // 2}" for i in range(len(ya))] + [f"b:{i}" for i in range(len(yb))]
    out = metrics_by_site(y, p, sites, patients, threshold=0.5, n_boot=300)
    assert list(out) == ["pooled", "a", "b"]
    assert out["a"]["n"] == 80 and sum(out["a"]["patients"].values()) == 40
    assert out["a"]["accuracy"] > 0.9 and out["b"]["roc_auc"] < 0.8
    for s in out.values():
        for k, (lo, hi) in s["ci"].items():
            assert lo <= s[k] + 1e-9 and s[k] - 1e-9 <= hi, (k, lo, s[k], hi)
    # fewer patients, wider interval: site B's accuracy CI is wider than the pooled one
    width = lambda s, k: s["ci"][k][1] - s["ci"][k][0]  # noqa: E731
    assert width(out["b"], "accuracy") > width(out["pooled"], "accuracy")
    assert "| a | 80 |" in site_table(out)


def test_each_site_is_scored_at_its_own_operating_threshold():
    from hub.evaluate import metrics_by_site

    y = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9, 0.6, 0.7, 0.8, 0.9])  # site b's normals score high
    sites, patients = ["a"] * 4 + ["b"] * 4, [f"p{i}" for i in range(8)]
    shared = metrics_by_site(y, p, sites, patients, 0.5, n_boot=50)
    own = metrics_by_site(y, p, sites, patients, np.array([0.5] * 4 + [0.75] * 4), n_boot=50)
    assert shared["b"]["specificity"] == 0.0 and own["b"]["specificity"] == 1.0
    assert own["b"]["threshold"] == 0.75 and own["a"] == {**own["a"], "specificity": 1.0}
    assert own["pooled"]["accuracy"] == 1.0 > shared["pooled"]["accuracy"]
