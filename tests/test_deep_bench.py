"""The deep decoder's benchmark: its flop count, its Adam, and its PyTorch twin."""
import numpy as np
import pytest

from minidip.deep import _bench
from minidip.deep.model import DeepDecoder


def test_matmul_flops_by_hand():
    """L = 2, k_0 = 3, k = (4, 5), c_out = 3 on 8x8 (input 4x4): layer 1 two products on 16
    pixels (no dB_0), layer 2 three on 64, the output three on 64."""
    gen = DeepDecoder((8, 8), channels=(4, 5), layers=2, input_channels=3, out_channels=3)
    by_hand = 2 * (2 * 4 * 3 * 16) + 3 * (2 * 5 * 4 * 64) + 3 * (2 * 3 * 5 * 64)
    assert _bench.matmul_flops(gen) == by_hand
    assert _bench.SHAPES["256"].layers == 6 and _bench.SHAPES["128"].channels == 64


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    tparams = [torch.tensor(params[n], requires_grad=True) for n in ("a", "b")]
    adam = _bench.Adam(params, lr=0.01)
    topt = torch.optim.Adam(tparams, lr=0.01)
    for _ in range(5):
        grads = {n: rng.standard_normal(v.shape) for n, v in params.items()}
        adam.update(params, grads)
        for t, n in zip(tparams, ("a", "b")):
            t.grad = torch.tensor(grads[n])
        topt.step()
    for t, n in zip(tparams, ("a", "b")):
        assert np.allclose(params[n], t.detach().numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("options", [dict(), dict(norm=False, sigmoid=True, out_channels=3),
                                     dict(upsample="cubic", layers=2)])
def test_twin_computes_our_model(options):
    pytest.importorskip("torch")
    kw = dict(channels=4, layers=3, dtype=np.float64)
    kw.update(options)
    gen = DeepDecoder((16, 24), **kw)
    params = {n: v + 0.1 for n, v in gen.init_weights().items()}
    y = np.random.default_rng(1).random(gen.output_shape)
    assert _bench.check_twin(gen, params, y) <= 1e-10
    step, loss_and_grads = _bench.torch_twin(gen, params, y)
    before = loss_and_grads()[0]
    assert before == pytest.approx(gen.loss_and_grad(params, y)[0], rel=1e-12)
    step()
    assert loss_and_grads()[0] < before                 # an Adam step on the twin's weights


def test_twin_mismatch_is_caught(monkeypatch):
    pytest.importorskip("torch")
    gen = DeepDecoder((8, 8), channels=3, layers=2, dtype=np.float64)
    params = gen.init_weights()
    monkeypatch.setattr(gen, "upsample", np.array([0.0, 1.0, 1.0]))   # the twin reads this
    with pytest.raises(RuntimeError, match="does not compute the same model"):
        _bench.check_twin(gen, params, np.zeros(gen.output_shape))


def test_compare_smoke():
    pytest.importorskip("torch")
    row = _bench.compare(_bench.Case("tiny", (16, 16), 4, 3), rounds=2)
    assert {"ours", "torch", "speedup", "roofline", "gradient_agreement",
            "threading_layer"} <= set(row)
    assert row["ours"] > 0 and row["torch"] > 0 and row["gradient_agreement"] < 1e-2


def test_compare_without_torch_times_ours_only(monkeypatch):
    """``minidip bench`` without PyTorch still times our Adam step; the twin's columns are None."""
    monkeypatch.setitem(__import__("sys").modules, "torch", None)      # import torch fails
    row = _bench.compare(_bench.Case("tiny", (8, 8), 4, 2), rounds=2)
    assert row["torch"] is None and row["speedup"] is None and row["gradient_agreement"] is None
    assert row["ours"] > 0 and row["roofline"] > 0
