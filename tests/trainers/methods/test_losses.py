"""Golden values for the KD losses, worked out by hand (see the comments) rather than by torch."""

import pytest
import torch

from trainers.methods.losses import combine_teachers, kd_loss, soft_loss

# s = [1, 2], t = [3, 0], y = 1, T = 2, α = 0.5:
#   p_s = softmax([0.5, 1.0]) = [0.377541, 0.622459];  p_t = softmax([1.5, 0.0]) = [0.817574, 0.182426]
#   KL(p_t‖p_s) = 0.817574·ln(0.817574/0.377541) + 0.182426·ln(0.182426/0.622459) = 0.407813
#   MSE = ((0.377541−0.817574)² + (0.622459−0.182426)²) / 2 = 0.193629
#   CE(s, 1) = ln(1 + e⁻¹) = 0.313262
#   KD(kl)  = 0.5·4·0.407813 + 0.5·0.313262 = 0.972256;   KD(mse) = 0.5·4·0.193629 + 0.5·0.313262 = 0.543890
S = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
T = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
Y = torch.tensor([1])


def test_kd_kl_golden():
    assert kd_loss(S, T, Y, temperature=2.0, alpha=0.5, kind="kl").item() == pytest.approx(
        0.9722561609283947, rel=1e-12)


def test_kd_mse_golden():
    assert kd_loss(S, T, Y, temperature=2.0, alpha=0.5, kind="mse").item() == pytest.approx(
        0.5438903470610683, rel=1e-12)


def test_soft_loss_is_zero_when_student_matches_teacher_and_batch_averaged():
    z = torch.tensor([[0.3, -1.2], [2.0, 0.1]], dtype=torch.float64)
    assert soft_loss(z, z, 3.0, "kl").item() == pytest.approx(0.0, abs=1e-15)
    pair = torch.cat([S, S]), torch.cat([T, T])
    assert soft_loss(*pair, 2.0, "kl").item() == pytest.approx(0.40781265858464166, rel=1e-12)


def test_alpha_extremes_are_pure_soft_and_pure_hard():
    assert kd_loss(S, T, Y, temperature=2.0, alpha=1.0).item() == pytest.approx(4 * 0.40781265858464166)
    assert kd_loss(S, T, Y, temperature=2.0, alpha=0.0).item() == pytest.approx(0.31326168751822286)


def test_combine_teachers_mean_and_weights():
    a, b = torch.tensor([[1.0, 3.0]]), torch.tensor([[3.0, -1.0]])
    assert combine_teachers([a, b]).tolist() == [[2.0, 1.0]]
    assert combine_teachers([a, b], [3.0, 1.0]).tolist() == [[1.5, 2.0]]
    assert combine_teachers([a]) is a
