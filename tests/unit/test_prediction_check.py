"""samplers/prediction_check.py: the noise coefficient of posterior-mean predictions against its
closed form, computed here independently by Monte Carlo on Gaussian data, and the verdicts."""
from __future__ import annotations

import math

import pytest
import torch
from zsnr_core.samplers import prediction_check as check


def posterior_predictions(alphas_cumprod: float, mean: float, std: float, n: int = 400_000):
    """(z, eps_hat, v_hat) for scalar Gaussian data x0 ~ N(mean, std²): the exact posterior means."""
    generator = torch.Generator().manual_seed(0)
    x0 = mean + std * torch.randn(1, n, generator=generator, dtype=torch.float64)
    eps = torch.randn(1, n, generator=generator, dtype=torch.float64)
    a, s = math.sqrt(alphas_cumprod), math.sqrt(1 - alphas_cumprod)
    z = a * x0 + s * eps
    var_z = a * a * std * std + s * s
    x0_hat = mean + a * std * std / var_z * (z - a * mean)  # E[x0 | z], Gaussian conditioning
    eps_hat = (z - a * x0_hat) / s
    return z, eps_hat, a * eps_hat - s * x0_hat


@pytest.mark.parametrize("alphas_cumprod", [0.0, 4.9e-8, 0.0047, 0.05])
@pytest.mark.parametrize("mean,std", [(0.0, 0.5), (0.6, 0.3), (0.0, 1.0), (-0.9, 0.1)])
def test_coefficients_match_the_closed_form(alphas_cumprod, mean, std):
    z, eps_hat, v_hat = posterior_predictions(alphas_cumprod, mean, std)
    second_moment = mean**2 + std**2
    d = alphas_cumprod * second_moment + 1 - alphas_cumprod
    c_eps = math.sqrt(1 - alphas_cumprod) / d
    c_v = math.sqrt(alphas_cumprod * (1 - alphas_cumprod)) * (1 - second_moment) / d
    assert float(check.noise_coefficient(eps_hat, z)) == pytest.approx(c_eps, abs=0.01)
    assert float(check.noise_coefficient(v_hat, z)) == pytest.approx(c_v, abs=0.01)
    assert check.judge("v_prediction", eps_hat, z, alphas_cumprod).looks_like == "epsilon"
    assert check.judge("epsilon", v_hat, z, alphas_cumprod).looks_like == "v_prediction"


def test_verdicts_and_the_judged_range():
    z = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    epsilon = check.judge("epsilon", z, z, 0.0)
    assert (epsilon.looks_like, epsilon.coefficient, epsilon.reason) == ("epsilon", pytest.approx(1.0), "")
    assert epsilon.margin == pytest.approx(min(1.0 - check.EPSILON_BAND[0], check.EPSILON_BAND[1] - 1.0))
    mismatch = check.judge("v_prediction", z, z, 0.0)
    assert mismatch.mismatch and mismatch.looks_like == "epsilon"
    v = check.judge("v_prediction", -0.3 * torch.ones_like(z), z, 0.0)
    assert not v.mismatch and v.looks_like == "v_prediction" and v.margin > 0.4
    assert check.judges(0.0) and check.judges(check.TOP_ALPHAS_CUMPROD) and not check.judges(0.06)
    assert float(check.noise_coefficient(z, torch.zeros_like(z)).abs().max()) == 0.0
    with pytest.raises(ValueError, match="declared"):
        check.judge("x0", z, z, 0.0)


def test_cannot_tell_is_never_a_mismatch():
    """Outputs no trained network gives: undecided, whatever was declared (issue #25)."""
    generator = torch.Generator().manual_seed(2)
    z = torch.randn(2, 4, 16, 16, generator=generator)
    unrelated = torch.randn(z.shape, generator=generator)  # c ≈ 0 but as rough as noise
    cases = {"rough": unrelated, "ambiguous c": 0.6 * z + 0.1, "epsilon band, large residual": z + 1.5 * unrelated}
    for name, output in cases.items():
        for declared in ("epsilon", "v_prediction"):
            verdict = check.judge(declared, output, z, 0.0)
            assert verdict.looks_like == check.UNDECIDED and not verdict.mismatch and verdict.reason, (name, verdict)
    far = check.judge("epsilon", 5 * z, 5 * z, 0.0)  # a latent 5x the model's scale
    assert far.looks_like == check.UNDECIDED and "mean square" in far.reason


def test_high_frequency_fraction_of_white_noise_and_of_smooth_images():
    noise = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert float(check.high_frequency_fraction(noise).mean()) == pytest.approx(check.WHITE_NOISE_HIGH_FREQUENCY, abs=0.01)
    ramp = torch.linspace(-1, 1, 32, dtype=torch.float64).expand(1, 3, 32, 32)
    assert float(check.high_frequency_fraction(ramp)) < 0.01
    blocks = torch.nn.functional.interpolate(noise[:4], scale_factor=2, mode="nearest")  # constant 2x2 blocks
    assert float(check.high_frequency_fraction(blocks).abs().max()) < 1e-12
