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
