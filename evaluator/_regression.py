"""Least squares for the latency predictor: non-negative fits with relative weights, and
k-fold out-of-fold errors to choose between feature sets and to steer sampling."""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

FOLDS = 10
PREFER_EARLIER = 1.05  # a less preferred candidate must cut the out-of-fold error by 5 %


def fit_weighted(x: np.ndarray, y: np.ndarray, weights: Optional[np.ndarray] = None,
                 nonnegative: bool = True) -> np.ndarray:
    """Coefficients c minimising || w * (x c - y) ||, c >= 0 when ``nonnegative``; columns are
    scaled for conditioning.

    Non-negative by default because every feature (FLOPs, elements, calls) costs time: a
    negative coefficient is usually noise fitted, and it extrapolates badly. Where the
    features cannot bend to the device otherwise, the free fit wins on out-of-fold error.
    """
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    a, b = (x / scale) * w[:, None], y * w
    if nonnegative:
        from scipy.optimize import nnls  # 0.2 s to import: not on the CLI's start-up path

        coef, _ = nnls(a, b, maxiter=50 * x.shape[1] + 100)
    else:
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    return coef / scale


def out_of_fold(x: np.ndarray, y: np.ndarray, weights: np.ndarray, seed: int = 0,
                nonnegative: bool = True) -> np.ndarray:
    """Prediction of every row by a fit on the other folds (leave-one-out below FOLDS rows)."""
    n = len(y)
    folds = min(FOLDS, n)
    order = np.random.default_rng(seed).permutation(n)
    predicted = np.empty(n)
    for k in range(folds):
        held = order[k::folds]
        kept = np.setdiff1d(order, held)
        if len(kept) == 0:
            predicted[held] = np.nan
            continue
        predicted[held] = x[held] @ fit_weighted(x[kept], y[kept], weights[kept], nonnegative)
    return predicted


def choose_fit(candidates: Dict[str, Tuple[np.ndarray, bool]], y: np.ndarray, denominator: np.ndarray,
               seed: int = 0, margin: float = PREFER_EARLIER) -> Tuple[str, np.ndarray, np.ndarray, Dict[str, float]]:
    """Fit every candidate (label: design matrix, non-negative or not; same rows, ``y``) with
    weights 1 / ``denominator``, keep the one with the lowest out-of-fold mean relative error
    (error / ``denominator``). Candidates come in order of preference: a later one wins only
    with an error ``margin`` times lower (noise must not buy flexibility).

    Returns its label, coefficients, its out-of-fold relative errors, and every candidate's
    mean absolute relative error in percent."""
    weights = 1.0 / denominator
    scores: Dict[str, float] = {}
    errors: Dict[str, np.ndarray] = {}
    for label, (x, nonnegative) in candidates.items():
        if len(y) >= 3:
            errors[label] = (out_of_fold(x, y, weights, seed, nonnegative) - y) / denominator
            scores[label] = float(np.nanmean(np.abs(errors[label])) * 100)
        else:  # too few rows to hold any out
            errors[label] = np.zeros(len(y))
            scores[label] = 0.0
    best = next(iter(scores))
    for label, score in scores.items():
        if score * margin < scores[best]:
            best = label
    x, nonnegative = candidates[best]
    return best, fit_weighted(x, y, weights, nonnegative), errors[best], scores


def fit_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least squares (the whole-graph term, where signs are free)."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


def leave_one_out_linear(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leave-one-out predictions of `fit_linear`."""
    n = len(y)
    out = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        out[i] = x[i] @ fit_linear(x[keep], y[keep])
    return out
