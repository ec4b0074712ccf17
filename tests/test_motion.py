import pytest
import torch

import lamo


def test_lag_delta_hand_values():
    # one sample, 4 frames, 1 channel, 1x2 pixels: frame i holds (i², 10·i)
    z = torch.tensor([[[[[i * i, 10.0 * i]]] for i in range(4)]])  # (1, 4, 1, 1, 2)
    d = lamo.lag_delta(z, tau=2)
    assert d.shape == (1, 2, 1, 1, 2)
    # Δ_2 z_0 = z_2 − z_0 = (4, 20); Δ_2 z_1 = z_3 − z_1 = (8, 20)
    assert torch.equal(d[0, :, 0, 0], torch.tensor([[4.0, 20.0], [8.0, 20.0]]))


def test_macro_drift_is_spatial_mean_per_channel():
    z = torch.zeros(2, 3, 2, 2, 2)
    z[:, 1, 0] = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # channel 0 of frame 1
    z[:, 2, 1] = 5.0
    mu = lamo.macro_drift(z, tau=1)
    assert mu.shape == (2, 2, 2)
    # pair 0 (frame1 − frame0): channel 0 mean 3, channel 1 mean 0
    # pair 1 (frame2 − frame1): channel 0 mean −3, channel 1 mean 5
    expected = torch.tensor([[3.0, 0.0], [-3.0, 5.0]])
    assert torch.allclose(mu[0], expected) and torch.allclose(mu[1], expected)


@pytest.mark.parametrize(
    "shape,tau,match",
    [((2, 3, 4, 4), 1, "5 dimensions"), ((1, 2, 3, 4, 4), 2, "at least 3"), ((1, 4, 3, 2, 2), 0, "positive")],
)
def test_bad_shapes_are_explained(shape, tau, match):
    with pytest.raises(ValueError, match=match):
        lamo.macro_drift(torch.zeros(shape), tau=tau)
