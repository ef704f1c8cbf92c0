"""The promotion gate, rule by rule, as a table."""

from __future__ import annotations

import numpy as np
import pytest

from hub.policy import Policy, decide, mcnemar_p


def m(acc, rec, auc=0.95):
    return {"accuracy": acc, "recall": rec, "roc_auc": auc}


P = Policy(min_recall=0.9, min_accuracy=0.8, recall_tolerance=0.01)


@pytest.mark.parametrize(
    "challenger,champion,policy,promote,why",
    [
        (m(0.85, 0.95), None, P, True, "no champion yet"),
        (m(0.85, 0.85), None, P, False, "fail: recall 0.850 vs floor"),
        (m(0.75, 0.99), None, P, False, "fail: accuracy 0.750 vs floor"),
        (m(0.90, 0.95), m(0.88, 0.95), P, True, "pass: accuracy 0.900 must beat champion 0.880"),
        (
            m(0.88, 0.95),
            m(0.88, 0.95),
            P,
            False,
            "fail: accuracy 0.880 must beat champion 0.880",
        ),  # equal is not better
        (m(0.93, 0.935), m(0.88, 0.95), P, False, "fail: recall 0.935 vs champion 0.950"),  # lost sensitivity
        (m(0.93, 0.945), m(0.88, 0.95), P, True, "pass: recall 0.945 vs champion 0.950"),  # within tolerance
        (m(0.89, 0.95), m(0.88, 0.95), Policy(min_accuracy_gain=0.02), False, "by more than 0.020"),
        (m(0.95, 0.99, auc=0.80), None, Policy(min_roc_auc=0.9), False, "fail: ROC AUC 0.800 vs floor 0.900"),
        (m(0.95, 0.99), m(0.90, 0.99), Policy(mcnemar_alpha=0.05), False, "no paired predictions"),
    ],
)
def test_gate_table(challenger, champion, policy, promote, why):
    d = decide(challenger, champion, policy)
    assert d.promote is promote
    assert any(why in r for r in d.reasons), d.reasons
    assert d.to_dict()["inputs"]["challenger"] == challenger


def test_mcnemar_by_hand_and_in_the_gate():
    champ = np.array([1] * 80 + [0] * 20, bool)
    chall = champ.copy()
    chall[80:90] = True  # c = 10 fixed by the challenger
    chall[0:1] = False  # b = 1 broken by it
    p, b, c = mcnemar_p(champ, chall)
    assert (b, c) == (1, 10)
    assert p == pytest.approx(12 / 2**11)  # P(X >= 10 | n = 11, 1/2) = (11 + 1) / 2048
    policy = Policy(min_recall=0, min_accuracy=0, mcnemar_alpha=0.05)
    assert decide(m(0.89, 0.9), m(0.80, 0.9), policy, paired=(champ, chall)).promote
    small = chall.copy()
    small[82:90] = False  # only 2 fixed, 1 broken: not significant
    d = decide(m(0.81, 0.9), m(0.80, 0.9), policy, paired=(champ, small))
    assert not d.promote and d.inputs["mcnemar"]["challenger_only_correct"] == 2


def test_unknown_policy_key_is_refused():
    with pytest.raises(ValueError, match="Unknown promotion policy keys \\['min_recal'\\]"):
        Policy.from_dict({"min_recal": 0.9})


def site(acc, rec, auc=0.95, patients=(30, 30), spec=0.9):
    return {
        "accuracy": acc,
        "recall": rec,
        "specificity": spec,
        "roc_auc": auc,
        "patients": {"NORMAL": patients[0], "PNEUMONIA": patients[1]},
    }


def scores(**sites):
    """Gold metrics with per-site entries (pooled numbers do not matter once sites are given)."""
    return {"accuracy": 0.0, "recall": 0.0, "roc_auc": 0.0, "sites": {"pooled": site(0, 0), **sites}}


SP = Policy(min_recall=0.9, min_accuracy=0.6, recall_tolerance=0.01, min_site_patients=5)


@pytest.mark.parametrize(
    "challenger,champion,policy,promote,why",
    [
        # learns the new site, keeps the first one's sensitivity: promoted on the site average; the first
        # site's champion at the new one called every film PNEUMONIA, so its recall there is no baseline
        (
            scores(kermany=site(0.93, 0.96), **{"nih-cc": site(0.70, 0.92)}),
            scores(kermany=site(0.94, 0.96), **{"nih-cc": site(0.45, 0.97, spec=0.10)}),
            SP,
            True,
            "pass: accuracy averaged over sites kermany, nih-cc: 0.815 must beat champion 0.695",
        ),
        (
            scores(kermany=site(0.93, 0.96), **{"nih-cc": site(0.70, 0.92)}),
            scores(kermany=site(0.94, 0.96), **{"nih-cc": site(0.45, 0.97, spec=0.10)}),
            SP,
            True,
            "nih-cc: the champion's recall 0.970 is no baseline (specificity 0.100",
        ),
        # a champion usable at the new site sets its sensitivity baseline there too
        (
            scores(kermany=site(0.93, 0.96), **{"nih-cc": site(0.80, 0.92)}),
            scores(kermany=site(0.94, 0.96), **{"nih-cc": site(0.75, 0.97, spec=0.60)}),
            SP,
            False,
            "fail: nih-cc: recall 0.920 vs champion 0.970",
        ),
        # better at the new site, but loses sensitivity at the first: refused, and the site is named
        (
            scores(kermany=site(0.95, 0.90), **{"nih-cc": site(0.80, 0.95)}),
            scores(kermany=site(0.94, 0.96), **{"nih-cc": site(0.45, 0.97)}),
            SP,
            False,
            "fail: kermany: recall 0.900 vs champion 0.960",
        ),
        # the floor holds at every measured site
        (
            scores(kermany=site(0.95, 0.97), **{"nih-cc": site(0.55, 0.95)}),
            None,
            SP,
            False,
            "fail: nih-cc: accuracy 0.550 vs floor 0.600",
        ),
        # a site with too little gold is reported as unmeasured, not silently passed
        (
            scores(kermany=site(0.95, 0.97), **{"clinic-7": site(0.10, 0.10, patients=(3, 8))}),
            None,
            SP,
            True,
            "unmeasured: site clinic-7 has {'NORMAL': 3, 'PNEUMONIA': 8} gold patients",
        ),
        # a site new since the champion counts in the floors, the average is over the shared sites
        (
            scores(kermany=site(0.95, 0.97), **{"nih-cc": site(0.70, 0.95)}),
            scores(kermany=site(0.94, 0.97)),
            SP,
            True,
            "new: site nih-cc was not in the champion's scores",
        ),
        # ROC AUC as the comparison, when configured
        (
            scores(kermany=site(0.93, 0.96, auc=0.97), **{"nih-cc": site(0.70, 0.92, auc=0.80)}),
            scores(kermany=site(0.94, 0.96, auc=0.98), **{"nih-cc": site(0.60, 0.92, auc=0.85)}),
            Policy(min_recall=0.9, min_accuracy=0.6, compare_on="roc_auc"),
            False,
            "fail: roc_auc averaged over sites kermany, nih-cc: 0.885 must beat champion 0.915",
        ),
        # nothing measured at all: refused
        (scores(tiny=site(1.0, 1.0, patients=(1, 1))), None, SP, False, "nothing to judge on"),
    ],
)
def test_per_site_gate_table(challenger, champion, policy, promote, why):
    d = decide(challenger, champion, policy)
    assert d.promote is promote, d.reasons
    assert any(why in r for r in d.reasons), d.reasons


def test_compare_on_must_be_accuracy_or_auc():
    with pytest.raises(ValueError, match="compare_on"):
        Policy(compare_on="f1")
