"""The promotion gate: a pure decision on gold-test scores (no MLflow here; see registry seam).

Policy (docs/design.md, "Promotion gate"), every rule configurable:
1. floors: the challenger's recall and accuracy (and optionally ROC AUC) must reach minimums;
2. no loss of sensitivity: challenger recall >= champion recall - ``recall_tolerance``;
3. better: challenger accuracy > champion accuracy + ``min_accuracy_gain`` (the seed's rule), and,
   if ``mcnemar_alpha`` is set, the gain must be significant by an exact one-sided McNemar test on
   the paired gold-set predictions.
The first model ever (no champion) is promoted if it clears the floors.

When the scores carry per-site metrics (``metrics["sites"]``, ``hub.evaluate.metrics_by_site``),
rules 1 and 2 hold for **every measured site** (a site with at least ``min_site_patients`` gold
patients of each class; the others are reported as unmeasured, never silently passed; rule 2 not
where the champion's specificity is below ``baseline_min_specificity``, as the first site's model
at a new site, whose recall there only means it calls every film PNEUMONIA), and rule 3
compares the **site average** of ``compare_on`` (accuracy or roc_auc) over the sites both models
were measured on: a challenger that improves the new site but loses sensitivity at the first one
is refused, and the reason names the site.
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
    min_site_patients: int = 5  # gold patients of each class for a site to count as measured
    # at a site where the champion's specificity is below this, its recall is no baseline: it comes from
    # calling nearly every film PNEUMONIA (the first site's model at a new site); the floors still hold
    baseline_min_specificity: float = 0.5
    compare_on: str = "accuracy"  # what the site average compares: accuracy or roc_auc

    def __post_init__(self):
        if self.compare_on not in ("accuracy", "roc_auc"):
            raise ValueError(f"Invalid compare_on {self.compare_on!r}: accuracy or roc_auc")

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


def measured_sites(metrics: dict, policy: Policy) -> tuple[dict[str, dict], dict[str, dict]]:
    """(measured, unmeasured) per-site metrics of one model's scores."""
    sites = {k: v for k, v in (metrics.get("sites") or {}).items() if k != "pooled"}
    enough = {k: v for k, v in sites.items() if min(v["patients"].values(), default=0) >= policy.min_site_patients}
    return enough, {k: v for k, v in sites.items() if k not in enough}


def decide(
    challenger: dict,
    champion: dict | None,
    policy: Policy = Policy(),
    paired: tuple[np.ndarray, np.ndarray] | None = None,
) -> Decision:
    """``challenger``/``champion``: gold metrics (accuracy, recall, roc_auc, ..., optionally ``sites``)
    scored in the same run. Without ``sites`` the pooled numbers are judged as one unnamed site.

    ``paired``: (champion_correct, challenger_correct) per gold image, needed for the McNemar rule.
    """
    reasons: list[str] = []
    ok = True
    inputs = {"challenger": challenger, "champion": champion, "policy": dataclasses.asdict(policy)}

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok &= passed
        reasons.append(("pass: " if passed else "fail: ") + text)

    by_site = bool(challenger.get("sites"))
    if by_site:
        measured, unmeasured = measured_sites(challenger, policy)
        champ_sites = measured_sites(champion, policy)[0] if champion else {}
    else:
        measured, unmeasured, champ_sites = {"": challenger}, {}, ({"": champion} if champion else {})
    at = lambda site: f"{site}: " if site else ""  # noqa: E731

    for site, m in sorted(unmeasured.items()):
        reasons.append(
            f"unmeasured: site {site} has {m['patients']} gold patients (NORMAL/PNEUMONIA), fewer than "
            f"{policy.min_site_patients} of each: not judged there"
        )
    if not measured:
        check(False, f"no site has {policy.min_site_patients} gold patients of each class: nothing to judge on")
        return Decision(False, tuple(reasons), inputs)
    for site, m in sorted(measured.items()):
        check(m["recall"] >= policy.min_recall, f"{at(site)}recall {m['recall']:.3f} vs floor {policy.min_recall:.3f}")
        check(
            m["accuracy"] >= policy.min_accuracy,
            f"{at(site)}accuracy {m['accuracy']:.3f} vs floor {policy.min_accuracy:.3f}",
        )
        if policy.min_roc_auc is not None:
            check(
                m["roc_auc"] >= policy.min_roc_auc,
                f"{at(site)}ROC AUC {m['roc_auc']:.3f} vs floor {policy.min_roc_auc:.3f}",
            )
    if champion is None:
        reasons.append("no champion yet: the first model that clears the floors becomes champion")
        return Decision(ok, tuple(reasons), inputs)

    both = sorted(set(measured) & set(champ_sites))
    for site in both:
        c, h = measured[site], champ_sites[site]
        if h.get("specificity", 1.0) < policy.baseline_min_specificity:
            reasons.append(
                f"{at(site)}the champion's recall {h['recall']:.3f} is no baseline (specificity "
                f"{h['specificity']:.3f} < {policy.baseline_min_specificity:.2f}: it calls nearly every film "
                "PNEUMONIA); the floor applies"
            )
            continue
        check(
            c["recall"] >= h["recall"] - policy.recall_tolerance,
            f"{at(site)}recall {c['recall']:.3f} vs champion {h['recall']:.3f} "
            f"(may drop by at most {policy.recall_tolerance:.3f})",
        )
    for site in sorted(set(measured) - set(champ_sites)):
        reasons.append(f"new: site {site} was not in the champion's scores; it counts in the floors only")
    key = policy.compare_on
    gain = f" by more than {policy.min_accuracy_gain:.3f}" if policy.min_accuracy_gain else ""
    if not both:
        check(False, "no site measured for both models: no comparison")
    else:
        ch = float(np.mean([measured[s][key] for s in both]))
        cp = float(np.mean([champ_sites[s][key] for s in both]))
        what = f"{key} averaged over sites {', '.join(both)}:" if by_site else key
        if by_site:
            inputs["site_average"] = {"metric": key, "sites": both, "challenger": ch, "champion": cp}
        check(ch > cp + policy.min_accuracy_gain, f"{what} {ch:.3f} must beat champion {cp:.3f}{gain}")
    if policy.mcnemar_alpha is not None:
        if paired is None:
            check(False, "McNemar test required but no paired predictions were given")
        else:
            p, b, c = mcnemar_p(*paired)
            inputs["mcnemar"] = {"p": p, "champion_only_correct": b, "challenger_only_correct": c}
            check(
                p < policy.mcnemar_alpha,
                f"McNemar one-sided p = {p:.4f} (b={b}, c={c}) vs alpha {policy.mcnemar_alpha}"
                + (" (pooled gold)" if by_site else ""),
            )
    return Decision(ok, tuple(reasons), inputs)
