"""The promotion gate: a pure decision on gold-test scores (no MLflow here; see registry seam).

Policy (docs/design.md, "Promotion gate"), every rule configurable:
1. floors: the challenger's recall and accuracy (and optionally ROC AUC) must reach minimums;
2. no loss of sensitivity: challenger recall >= champion recall - ``recall_tolerance``;
3. better: challenger accuracy > champion accuracy + ``min_accuracy_gain`` (the seed's rule), and,
   if ``mcnemar_alpha`` is set, the gain must be significant by an exact one-sided McNemar test on
   the paired gold-set predictions.
The first model ever (no champion) is promoted if it clears the floors.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Policy:
    min_recall: float = 0.90
    min_accuracy: float = 0.80
    min_roc_auc: float | None = None
    recall_tolerance: float = 0.01
    min_accuracy_gain: float = 0.0
    mcnemar_alpha: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> Policy:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(
                f"Unknown promotion policy keys {sorted(unknown)}. "
                f"Supported: {', '.join(f.name for f in dataclasses.fields(cls))}."
            )
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    inputs: dict

    def to_dict(self) -> dict:
        return {"promote": self.promote, "reasons": list(self.reasons), "inputs": self.inputs}


def mcnemar_p(champion_correct: np.ndarray, challenger_correct: np.ndarray) -> tuple[float, int, int]:
    """Exact one-sided McNemar p-value that the challenger is better; returns (p, b, c).

    b = images only the champion gets right, c = images only the challenger gets right.
    """
    a, b_ = np.asarray(champion_correct, bool), np.asarray(challenger_correct, bool)
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    n = b + c
    if n == 0:
        return 1.0, b, c
    p = sum(math.comb(n, k) for k in range(c, n + 1)) / 2**n
    return float(min(1.0, p)), b, c


def decide(
    challenger: dict,
    champion: dict | None,
    policy: Policy = Policy(),
    paired: tuple[np.ndarray, np.ndarray] | None = None,
) -> Decision:
    """``challenger``/``champion``: gold metrics (accuracy, recall, roc_auc, ...) scored in the same run.

    ``paired``: (champion_correct, challenger_correct) per gold image, needed for the McNemar rule.
    """
    reasons: list[str] = []
    ok = True
    inputs = {"challenger": challenger, "champion": champion, "policy": dataclasses.asdict(policy)}

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok &= passed
        reasons.append(("pass: " if passed else "fail: ") + text)

    check(
        challenger["recall"] >= policy.min_recall, f"recall {challenger['recall']:.3f} vs floor {policy.min_recall:.3f}"
    )
    check(
        challenger["accuracy"] >= policy.min_accuracy,
        f"accuracy {challenger['accuracy']:.3f} vs floor {policy.min_accuracy:.3f}",
    )
    if policy.min_roc_auc is not None:
        check(
            challenger["roc_auc"] >= policy.min_roc_auc,
            f"ROC AUC {challenger['roc_auc']:.3f} vs floor {policy.min_roc_auc:.3f}",
        )
    if champion is None:
        reasons.append("no champion yet: the first model that clears the floors becomes champion")
        return Decision(ok, tuple(reasons), inputs)

    check(
        challenger["recall"] >= champion["recall"] - policy.recall_tolerance,
        f"recall {challenger['recall']:.3f} vs champion {champion['recall']:.3f} "
        f"(may drop by at most {policy.recall_tolerance:.3f})",
    )
    check(
        challenger["accuracy"] > champion["accuracy"] + policy.min_accuracy_gain,
        f"accuracy {challenger['accuracy']:.3f} must beat champion {champion['accuracy']:.3f}"
        + (f" by more than {policy.min_accuracy_gain:.3f}" if policy.min_accuracy_gain else ""),
    )
    if policy.mcnemar_alpha is not None:
        if paired is None:
            check(False, "McNemar test required but no paired predictions were given")
        else:
            p, b, c = mcnemar_p(*paired)
            inputs["mcnemar"] = {"p": p, "champion_only_correct": b, "challenger_only_correct": c}
            check(
                p < policy.mcnemar_alpha,
                f"McNemar one-sided p = {p:.4f} (b={b}, c={c}) vs alpha {policy.mcnemar_alpha}",
            )
    return Decision(ok, tuple(reasons), inputs)
