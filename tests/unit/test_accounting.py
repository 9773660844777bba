"""Unit tests for scfed.dp.accounting and the ``scfed privacy`` command."""

from __future__ import annotations

import argparse
import math
from fractions import Fraction

import pytest

from scfed.cli import privacy
from scfed.dp import accounting
from scfed.dp.accounting import epsilon, local_variance, release_rho, rho_for_epsilon
from scfed.errors import ConfigError, PrivacyParameterError

#: OpenDP's test value for its zCDP-to-approxDP conversion.
OPENDP_RHO = Fraction(1, 32)
OPENDP_DELTA = 1e-3
OPENDP_EPSILON = 0.6880024554878086


# ---- epsilon ----


def test_epsilon_reproduces_opendp() -> None:
    assert epsilon(OPENDP_RHO, OPENDP_DELTA) == pytest.approx(OPENDP_EPSILON, abs=1e-12)
    assert epsilon(OPENDP_RHO, OPENDP_DELTA) == OPENDP_EPSILON
    assert epsilon(float(OPENDP_RHO), OPENDP_DELTA) == OPENDP_EPSILON


def test_epsilon_of_readme_default() -> None:
    assert epsilon(Fraction(1, 2), 1e-9) == pytest.approx(6.474070020726487, abs=1e-12)


def test_epsilon_of_zero_rho_is_zero() -> None:
    assert epsilon(0, 1e-9) == 0.0
    assert epsilon(Fraction(0), 0.5) == 0.0


@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-5, 1e-2])
def test_epsilon_increases_with_rho(delta: float) -> None:
    rhos = [1e-8, 1e-4, 0.01, 0.1, 0.5, 1.0, 10.0, 1e3]
    values = [epsilon(r, delta) for r in rhos]
    assert values == sorted(values)
    positive = [v for v in values if v > 0]  # a large delta can cover a small rho at epsilon 0
    assert len(set(positive)) == len(positive) >= len(values) - 2


@pytest.mark.parametrize("rho", [1e-6, 0.01, 0.5, 5.0])
def test_epsilon_decreases_with_delta(rho: float) -> None:
    values = [epsilon(rho, d) for d in (1e-15, 1e-9, 1e-6, 1e-3, 0.1)]
    assert values == sorted(values, reverse=True)
    positive = [v for v in values if v > 0]
    assert len(set(positive)) == len(positive) >= 3


@pytest.mark.parametrize("rho", [1e-10, 1e-4, 1 / 32, 0.5, 2.0, 100.0])
@pytest.mark.parametrize("delta", [1e-12, 1e-9, 1e-3, 0.1])
def test_epsilon_is_within_the_bun_steinke_bound(rho: float, delta: float) -> None:
    assert 0.0 <= epsilon(rho, delta) <= rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


@pytest.mark.parametrize(("rho", "delta"), [(0.5, 1e-9), (1 / 32, 1e-3), (0.01, 1e-6), (3.0, 0.1)])
def test_epsilon_meets_the_cks_delta(rho: float, delta: float) -> None:
    """At the returned epsilon, the best order's CKS20 delta is delta, and no smaller."""
    eps = epsilon(rho, delta)
    best = _cks_log_delta(_best_alpha(rho, eps), rho, eps)
    assert best <= math.log(delta) + 1e-12
    assert best == pytest.approx(math.log(delta), rel=1e-12)


def _cks_log_delta(alpha: float, rho: float, eps: float) -> float:
    return (alpha - 1) * (alpha * rho - eps) - math.log(alpha - 1) + alpha * math.log1p(-1 / alpha)


def _best_alpha(rho: float, eps: float) -> float:
    """Golden-section search of the convex log delta over log(alpha - 1)."""
    low, high = math.log(1e-6), math.log(1e6)
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(200):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if _cks_log_delta(1 + math.exp(left), rho, eps) < _cks_log_delta(
            1 + math.exp(right), rho, eps
        ):
            high = right
        else:
            low = left
    return 1 + math.exp((low + high) / 2)


@pytest.mark.parametrize("eps", [0.01, 0.5, 1.0, 6.5, 50.0])
@pytest.mark.parametrize("delta", [1e-9, 1e-3])
def test_rho_for_epsilon_inverts_epsilon(eps: float, delta: float) -> None:
    rho = rho_for_epsilon(eps, delta)
    assert epsilon(rho, delta) <= eps
    assert epsilon(math.nextafter(rho, math.inf) * (1 + 1e-12), delta) > eps
    assert epsilon(rho, delta) == pytest.approx(eps, rel=1e-12)


def test_rho_for_zero_epsilon_is_tiny() -> None:
    # A positive delta covers a tiny rho at epsilon 0.
    rho = rho_for_epsilon(0.0, 1e-9)
    assert 0.0 < rho < 1e-15
    assert epsilon(rho, 1e-9) == 0.0
    assert epsilon(2 * rho, 1e-9) > 0.0


@pytest.mark.parametrize(
    ("rho", "delta"),
    [(-0.1, 1e-9), (Fraction(-1, 3), 1e-9), (0.5, 0.0), (0.5, 1.0), (0.5, -1e-3), (math.nan, 0.1)],
)
def test_epsilon_refuses_bad_input(rho: float, delta: float) -> None:
    with pytest.raises(PrivacyParameterError, match=r"rho|delta"):
        epsilon(rho, delta)


def test_rho_for_epsilon_refuses_bad_input() -> None:
    for eps, delta in ((-1.0, 1e-9), (math.inf, 1e-9), (1.0, 0.0), (1.0, 2.0)):
        with pytest.raises(PrivacyParameterError, match=r"epsilon|delta"):
            rho_for_epsilon(eps, delta)


# ---- exact accounting ----


def test_local_variance_rounds_up() -> None:
    assert local_variance(Fraction("120.5"), 5, 1) == 3631  # 14520.25 / 4 = 3630.06
    assert local_variance(Fraction(4), 5, 1) == 4
    assert local_variance(Fraction("4.1"), 5, 1) == 5
    assert local_variance(Fraction(3), 3, 0) == 3


def test_local_variance_refuses_bad_input() -> None:
    for sigma, n_min, t in ((Fraction(0), 5, 1), (Fraction(-1), 5, 1), (Fraction(1), 3, 3)):
        with pytest.raises(PrivacyParameterError, match=r"sigma|t_collude"):
            local_variance(sigma, n_min, t)
    with pytest.raises(PrivacyParameterError, match="t_collude"):
        local_variance(Fraction(10), 5, -1)
    with pytest.raises(TypeError, match="bool"):
        local_variance(True, 5, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        local_variance(120.5, 5, 1)  # type: ignore[arg-type]


def test_sensitivity2() -> None:
    assert accounting.sensitivity2("magnitude", 7) == 49
    assert accounting.sensitivity2("firm", 7) == 98
    with pytest.raises(PrivacyParameterError, match="privacy unit"):
        accounting.sensitivity2("household", 7)
    with pytest.raises(PrivacyParameterError, match="positive"):
        accounting.sensitivity2("firm", 0)


def test_release_rho_is_exact() -> None:
    rho = release_rho(delta2=1, survivors=5, t_collude=1, sigma_l2=4)
    assert rho == Fraction(1, 32)
    assert release_rho(delta2=98, survivors=10, t_collude=2, sigma_l2=49) == Fraction(1, 8)
    assert release_rho(delta2=3, survivors=4, t_collude=0, sigma_l2=5) == Fraction(3, 40)


@pytest.mark.parametrize(
    ("delta2", "survivors", "t_collude", "sigma_l2"),
    [(0, 5, 1, 4), (1, 5, 5, 4), (1, 5, -1, 4), (1, 5, 1, 3)],
)
def test_release_rho_refuses_bad_input(
    delta2: int, survivors: int, t_collude: int, sigma_l2: int
) -> None:
    with pytest.raises(PrivacyParameterError, match=r"Delta|t_collude|sigma_l"):
        release_rho(delta2=delta2, survivors=survivors, t_collude=t_collude, sigma_l2=sigma_l2)


@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0, 10.0])
@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9])
def test_matches_opendp_when_installed(scale: float, delta: float) -> None:
    """OpenDP's Gaussian mechanism of this scale is (1 / (2 scale^2))-zCDP; its conversion
    and ours agree to a few units in the last place."""
    dp = pytest.importorskip("opendp.prelude")
    dp.enable_features("contrib")
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=scale
    )
    curve = dp.c.make_zCDP_to_approxDP(gaussian).map(1.0)
    rho = 1 / (2 * Fraction(scale) ** 2)
    assert epsilon(rho, delta) == pytest.approx(curve.epsilon(delta), rel=1e-14)


# ---- the privacy command ----


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    parser = argparse.ArgumentParser(prog="scfed")
    roles = parser.add_subparsers(dest="command", required=True)
    privacy.add_parser(roles)
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out.splitlines()


def test_cli_epsilon_prints_the_value_last(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _run(["privacy", "epsilon", "--rho", "1/32", "--delta", "1e-3"], capsys)
    assert float(lines[-1]) == OPENDP_EPSILON
    lines = _run(["privacy", "epsilon", "--rho", "0.5", "--delta", "1e-9"], capsys)
    assert float(lines[-1]) == epsilon(Fraction(1, 2), 1e-9)


@pytest.mark.parametrize(
    ("rho", "delta"), [("-1", "0.1"), ("0.5", "0"), ("0.5", "1.5"), ("x", "0.1")]
)
def test_cli_epsilon_refuses_bad_input(
    rho: str, delta: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError):
        _run(["privacy", "epsilon", "--rho", rho, "--delta", delta], capsys)
