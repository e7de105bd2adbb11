"""The significance tests the statistical judge (`stats`) uses, one-sided, on plain
numbers: a two-proportion z-test (is the canary's rate worse at all?), the same test
shifted by an effect floor (is it worse by more than the floor?), the smallest change a
phase's counts can detect, and Mann-Whitney U (scipy's) for per-interval values."""

from __future__ import annotations

import math
from statistics import NormalDist


def upper_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z, exact far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def quantile(tail: float) -> float:
    """The z with P(Z > z) = tail."""
    return NormalDist().inv_cdf(1 - tail)


def z_test(x_c: int, n_c: int, x_s: int, n_s: int, worse: int) -> float:
    """One-sided p-value of the two-proportion z-test (pooled variance)."""
    pooled = (x_c + x_s) / (n_c + n_s)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_s))
    if se == 0:
        return 1.0
    return upper_tail(worse * (x_c / n_c - x_s / n_s) / se)


def beyond_floor(p_c: float, n_c: int, p_s: float, n_s: int, worse: int, floor: float) -> float:
    """One-sided p-value that the canary's rate is worse than stable's by more than the
    floor: above p_s + floor (worse = 1, an absolute floor) or under p_s x (1 - floor)
    (worse = -1, a relative one); a z-test with each variant's own variance."""
    k = 1.0 if worse > 0 else 1 - floor
    bound = p_s + floor if worse > 0 else p_s * k
    se = math.sqrt(p_c * (1 - p_c) / n_c + k * k * p_s * (1 - p_s) / n_s)
    harm = worse * (p_c - bound)
    if se == 0:
        return 0.0 if harm > 0 else 1.0
    return upper_tail(harm / se)


def detectable(
    p0: float, n_c: int, n_s: int, worse: int, alpha: float, power: float
) -> float | None:
    """The smallest change of a proportion from stable's `p0` (in the `worse` direction)
    this z-test sees with probability `power` at level `alpha`; None when none."""
    z_a, z_b = quantile(alpha), quantile(1 - power)

    def seen(delta: float) -> bool:
        p1 = p0 + worse * delta
        pooled = (n_c * p1 + n_s * p0) / (n_c + n_s)
        se0 = math.sqrt(max(0.0, pooled * (1 - pooled)) * (1 / n_c + 1 / n_s))
        se1 = math.sqrt(max(0.0, p1 * (1 - p1)) / n_c + p0 * (1 - p0) / n_s)
        return delta >= z_a * se0 + z_b * se1

    top = 1 - p0 if worse > 0 else p0
    if n_c <= 0 or n_s <= 0 or top <= 0 or not seen(top):
        return None
    low, high = 0.0, top
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (low, middle) if seen(middle) else (middle, high)
    return high


def greater(canary: list[float], stable: list[float]) -> float:
    """Mann-Whitney U's one-sided p-value that the canary's values are the greater."""
    if max(canary + stable) == min(canary + stable):
        return 1.0  # all tied: nothing to tell
    from scipy.stats import mannwhitneyu  # a second to import: only the engine pays it

    p_value = float(mannwhitneyu(canary, stable, alternative="greater").pvalue)
    return 1.0 if math.isnan(p_value) else p_value
