"""Tests of minidip.restore: the offset, the fit against E23 computed without the module, colour
channel by channel, the deep-model path through a stand-in model, Ctrl-C, baselines, errors."""
from __future__ import annotations

import numpy as np
import pytest

import minidip as md
from minidip import operators as O
from minidip import restore as rs
from minidip import stopping

F = md.filters


def masked_problem(n=96, seed=1, missing=0.4):
    x = 0.5 + 0.2 * md.data.bandlimited((n,), p=6, seed=0)
    keep = np.random.default_rng(seed).random(n) >= missing
    A = O.Mask(keep)
    return x, keep, A, A.forward(x)


# --------------------------------------------------------------------------------------------
# The offset c = <A 1, y> / ||A 1||^2

def test_offset_is_the_mean_of_the_measured_level():
    rng = np.random.default_rng(0)
    image = rng.random((12, 10))
    keep = rng.random((12, 10)) < 0.5
    assert rs.offset(np.where(keep, image, 0.0), O.Mask(keep)) == pytest.approx(
        image[keep].mean(), rel=1e-12)
    down = O.Downsample(2, shape=(12, 10))
    assert rs.offset(down.forward(image), down) == pytest.approx(image.mean(), rel=1e-12)
    taps = F.gaussian(1.0, ndim=2, normalize=False)
    blur = O.Blur(taps / taps.sum(), (12, 10))
    assert rs.offset(blur.forward(image), blur) == pytest.approx(image.mean(), rel=1e-12)
    # A least-squares constant: for a Gaussian matrix, <g, y> / ||g||^2 with g = M 1.
    gauss = O.Gaussian(7, (12, 10), seed=3)
    y = gauss.forward(image)
    g = gauss.matrix.sum(axis=1)
    assert rs.offset(y, gauss) == pytest.approx(g @ y / (g @ g), rel=1e-12)
    edge = O.Blur(np.array([1.0, -1.0, 0.0]), (9,))              # maps constants to 0
    assert rs.offset(edge.forward(rng.random(9)), edge) == 0.0


# --------------------------------------------------------------------------------------------
# The fit converges to E23 (computed here from md.spectral, with the offset by hand)

def test_restore_converges_to_the_interpolant_in_the_lazy_regime():
    x, keep, A, y = masked_problem()
    taps = F.gaussian(1.5)
    res = rs.restore(y, A, filter=taps, channels=4096, steps=300, clean=x)
    c = x[keep].mean()
    limit = c + md.spectral.interpolant(taps, (96,), A, np.where(keep, x - c, 0.0))
    # The finite-width kernel differs from Sigma by about (k/2)^(-1/2) = 0.022; the threshold
    # of issue 13 for "at convergence", 5%, covers that with a factor 2.
    assert np.linalg.norm(res.output - limit) <= 0.05 * np.linalg.norm(limit)
    np.testing.assert_allclose(rs.interpolant(y, A, filter=taps), limit, rtol=0, atol=1e-9)
    assert res.info["offset"] == pytest.approx(c, rel=1e-12)
    assert res.history["error"].shape == (301,)                      # image space, with clean
    assert res.stopped_at == 300 and res.info["triggered"] is False  # "auto" without noise


def test_restore_is_fit_of_the_shifted_measurements():
    """restore = md.fit of the default generator on y - A(c 1), plus c."""
    x, keep, A, y = masked_problem(n=64)
    res = rs.restore(y, A, channels=8, steps=20, seed=3)
    c = y[keep].mean()
    gen = md.Generator(F.parse_filter(rs.DEFAULT_FILTER[1], 1), (64,), 8, seed=3)
    direct = md.fit(gen, np.where(keep, y - c, 0.0), 20, operator=A)
    np.testing.assert_array_equal(res.output, direct.output + c)


def test_auto_stop_is_the_discrepancy_rule_when_the_noise_level_is_given():
    x, keep, A, _ = masked_problem()
    sigma = 0.05
    y = A.forward(x + sigma * np.random.default_rng(2).standard_normal(x.shape))
    res = rs.restore(y, A, channels=64, steps=400, noise_std=sigma)
    assert res.info["triggered"] and res.info["noise_std"] == sigma
    assert res.stopped_at < 400
    # The rule stops at the first iterate with ||A G - y||^2 <= M sigma^2 (M known pixels).
    rms = np.sqrt(np.mean((res.output - y)[keep] ** 2))
    assert rms <= sigma


# --------------------------------------------------------------------------------------------
# Colour: three fits of the same generator

def _colour_problem(seed):
    """A random (3, 16, 12) image, a 60% mask and its colour measurements."""
    rng = np.random.default_rng(seed)
    image = rng.random((3, 16, 12))
    A = O.Mask(rng.random((16, 12)) < 0.6)
    return image, A, np.stack([A.forward(c) for c in image])


def test_colour_is_three_grey_fits():
    image, A, y = _colour_problem(4)
    res = rs.restore(y, A, channels=4, steps=5, seed=2, clean=image)
    assert res.output.shape == (3, 16, 12)
    assert len(res.stopped_at) == len(res.weights) == len(res.history) == 3
    for channel in range(3):
        grey = rs.restore(y[channel], A, channels=4, steps=5, seed=2, clean=image[channel])
        np.testing.assert_array_equal(res.output[channel], grey.output)
        np.testing.assert_array_equal(res.history[channel]["psnr"], grey.history["psnr"])
        assert res.info["offset"][channel] == grey.info["offset"]
    assert res.info["triggered"] is False
    limit = rs.interpolant(y, A)
    for channel in range(3):
        np.testing.assert_array_equal(limit[channel], rs.interpolant(y[channel], A))


class _InterruptAt(stopping.StopRule):
    """Raises KeyboardInterrupt at ``iteration`` of the ``fit``-th fit it watches."""

    def __init__(self, fit, iteration):
        super().__init__()
        self.fit, self.iteration, self.count = fit, iteration, -1

    def start(self, context):
        self.count += 1

    def observe(self, iteration, output, loss):
        if self.count == self.fit and iteration == self.iteration:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_ctrl_c_in_a_colour_channel_keeps_what_was_fitted():
    image, A, y = _colour_problem(5)
    with pytest.raises(md.FitInterrupted) as caught:
        rs.restore(y, A, channels=4, steps=6, stop=_InterruptAt(1, 3))
    result = caught.value.result
    assert result.info["interrupted_channel"] == 1 and caught.value.iteration == 2
    done = rs.restore(y[0], A, channels=4, steps=6)
    np.testing.assert_array_equal(result.output[0], done.output)
    partial = rs.restore(y[1], A, channels=4, steps=2)
    np.testing.assert_array_equal(result.output[1], partial.output)
    np.testing.assert_allclose(result.output[2], np.full((16, 12), y[2][A.mask].mean()),
                               rtol=1e-12)
    assert result.stopped_at == (6, 2, 0)
    assert result.info["channels"][2]["fitted"] is False


# --------------------------------------------------------------------------------------------
# The deep model: refused without md.DeepDecoder; with one, fitted jointly through PerChannel

def test_deep_model_needs_the_deep_decoder(monkeypatch):
    monkeypatch.delattr(md, "DeepDecoder", raising=False)
    x, keep, A, y = masked_problem(n=32)
    with pytest.raises(ValueError, match="needs minidip.DeepDecoder"):
        rs.restore(y, A, model="deep")


class StandIn:
    """A model with the fit protocol whose output is its weights (G(W) = W): the least-squares
    solution of A W = y is then known, so the plumbing of the deep path can be checked."""

    built = []

    def __init__(self, shape, channels=64, layers=4, out_channels=1, seed=0, backend=None):
        self.shape, self.out_channels, self.layers = tuple(shape), out_channels, layers
        self.dtype = np.dtype(np.float64)
        StandIn.built.append(self)

    @property
    def output_shape(self):
        return self.shape if self.out_channels == 1 else (3,) + self.shape

    def init_weights(self):
        return np.zeros(self.output_shape)

    def check_weights(self, W):
        return np.asarray(W, np.float64)

    def check_target(self, y):
        return np.asarray(y, np.float64)

    def forward(self, W):
        return np.array(W)

    def objective_grad(self, W, objective):
        loss, grad = objective(np.array(W))
        return loss, grad, np.array(W)

    def loss_and_grad(self, W, y):
        return self.objective_grad(W, md.fitting.Objective(y))[:2]

    def stable_step_limit(self, operator=None):
        return None


def test_deep_model_fits_colour_jointly(monkeypatch):
    monkeypatch.setattr(md, "DeepDecoder", StandIn, raising=False)
    StandIn.built.clear()
    rng = np.random.default_rng(6)
    image = rng.random((3, 16, 24))
    keep = rng.random((16, 24)) < 0.7
    A = O.Mask(keep)
    y = np.stack([A.forward(c) for c in image])
    res = rs.restore(y, A, model="deep", steps=2000)
    (model,) = StandIn.built                                   # one joint fit
    assert model.out_channels == 3 and model.layers == rs.deep_layers((16, 24)) == 3
    assert res.info["optimizer"] == "adam" and len(res.info["offset"]) == 3
    # Adam on ||A W - y||^2 from W = 0 drives the known pixels to y and leaves the others at
    # their start, which is the offset of their channel.
    known = np.broadcast_to(keep, image.shape)
    np.testing.assert_allclose(res.output[known], y[known], atol=1e-3)
    offsets = np.array(res.info["offset"]).reshape(3, 1, 1)
    np.testing.assert_allclose(res.output[~known],
                               np.broadcast_to(offsets, image.shape)[~known], atol=1e-12)
    with pytest.raises(ValueError, match="no filter option"):
        rs.restore(y, A, model="deep", filter="gaussian:1")


@pytest.mark.parametrize("shape, layers", [((150, 128), 2), ((128, 128), 4), ((8, 8), 2),
                                           ((6, 7), 1), ((64,), 4), ((24,), 3)])
def test_deep_layers(shape, layers):
    assert rs.deep_layers(shape) == layers


# --------------------------------------------------------------------------------------------
# Baselines and errors

def test_baseline_by_operator():
    rng = np.random.default_rng(7)
    image = rng.random((3, 8, 6))
    keep = rng.random((8, 6)) < 0.5
    mask = O.Mask(keep)
    y = np.stack([mask.forward(c) for c in image])
    got = rs.baseline(y, mask)
    for c in range(3):
        np.testing.assert_array_equal(got[c], md.baselines.harmonic_fill(y[c], keep))
    down = O.Downsample(2, shape=(8, 6))
    np.testing.assert_array_equal(rs.baseline(down.forward(image[0]), down),
                                  md.baselines.upsample_bicubic(down.forward(image[0]), 2))
    other = O.Downsample(2, F.gaussian(0.3, ndim=2), (8, 6))
    assert rs.baseline(other.forward(image[0]), other) is None
    blur = O.Blur(F.gaussian(0.3, ndim=2), (8, 6))
    assert rs.baseline(blur.forward(image[0]), blur) is None


def test_bad_input_raises():
    x, keep, A, y = masked_problem(n=32)
    with pytest.raises(ValueError, match="minidip.operators"):
        rs.restore(y, np.eye(32))
    with pytest.raises(ValueError, match=r"expected the operator's output \(32,\) or \(3, 32\)"):
        rs.restore(y[:30], A)
    with pytest.raises(ValueError, match="one image grid"):
        rs.restore(np.zeros((3, 32)), O.PerChannel(A, 3))
    with pytest.raises(ValueError, match="one image grid"):
        rs.restore(np.zeros((3, 4, 4)), O.PerChannel(O.Mask(np.ones((4, 4), bool)), 3))
    with pytest.raises(ValueError, match="model must be one of"):
        rs.restore(y, A, model="unet")
    with pytest.raises(ValueError, match="clean"):
        rs.restore(y, A, clean=np.zeros(31), steps=1)
    with pytest.raises(ValueError, match="non-finite"):
        rs.restore(np.full(32, np.nan), A)
    with pytest.raises(ValueError, match="larger than the signal"):
        rs.restore(np.zeros(8), O.Mask(np.ones(8, bool)), filter="gaussian:3")
    with pytest.raises(ValueError, match="unknown filter"):
        rs.interpolant(y, A, filter="sobel")
