"""The rounder (FAAR, GPTQ) through the binding, checked against numpy computations of the
H-weighted loss. Skipped when the loaded library has no rounder."""
import numpy as np
import pytest

import nvfp4

pytestmark = pytest.mark.skipif(not nvfp4.has_rounder(), reason="this libnvfp4 has no nvfp4_rounder_* symbols")


def layer(out_f=32, in_f=64, n=512, seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.standard_t(4, size=(out_f, in_f)) * 0.05).astype(np.float32)
    # correlated inputs: a few latent factors plus noise, and uneven channel scales
    Z = rng.standard_normal((n, 8))
    M = rng.standard_normal((8, in_f))
    X = (Z @ M + 0.3 * rng.standard_normal((n, in_f))) * np.exp(0.5 * rng.standard_normal(in_f))
    X = X.astype(np.float32)
    H = (X.astype(np.float64).T @ X.astype(np.float64) / n)
    return W, X, H


def loss(q, W, H):
    What = nvfp4.dequantize(*q, cols=W.shape[1]).astype(np.float64)
    D = What - W.astype(np.float64)
    return float(np.trace(D @ H @ D.T) / W.shape[0])


def test_faar_never_worse_than_its_start_and_reports_true_losses():
    W, X, H = layer()
    q, res = nvfp4.round_weights(W, H=H.astype(np.float32), method="faar", iterations=300)
    rtn = nvfp4.quantize(W)
    l_rtn, l_faar = loss(rtn, W, H), loss(q, W, H)
    assert res["loss_start"] == pytest.approx(l_rtn, rel=1e-3)
    assert res["loss_final"] == pytest.approx(l_faar, rel=1e-3)
    assert l_faar <= l_rtn * (1 + 1e-9)
    assert res["loss_final"] <= res["loss_start"]
    # hardened codes: every element decodes to one of its two grid neighbours at the final scale
    assert (q.scales < 0x7F).all()


def test_gptq_beats_round_to_nearest_on_correlated_inputs():
    W, X, H = layer(seed=1)
    q, res = nvfp4.round_weights(W, X=X, method="gptq")
    assert loss(q, W, H) < loss(nvfp4.quantize(W), W, H)
    assert res["samples"] == X.shape[0]


def test_samples_and_gram_give_the_same_result():
    W, X, H = layer(seed=2, n=300)
    with nvfp4.Rounder(*W.shape, method="gptq") as r:
        r.add_samples(X[:100])
        r.add_samples(X[100:])
        a = r.run(W)
    with nvfp4.Rounder(*W.shape, method="gptq") as r:
        r.set_gram((X.astype(np.float64).T @ X / X.shape[0]).astype(np.float32))
        b = r.run(W)
    # the two Gram matrices differ only by float rounding: the losses agree closely
    assert loss(a, W, H) == pytest.approx(loss(b, W, H), rel=1e-3)


def test_parameters_round_trip_and_errors():
    W, X, H = layer(8, 32, 64, seed=3)
    with nvfp4.Rounder(8, 32, method="faar", iterations=7, learning_rate=0.02) as r:
        assert r.get("iterations") == 7
        assert r.get("learning_rate") == pytest.approx(0.02)
        with pytest.raises(nvfp4.NVFP4Error) as e:
            r.run(W)  # no calibration data yet
        assert e.value.status_name == "NVFP4_ERR_STATE"
        with pytest.raises(nvfp4.NVFP4Error) as e:
            r.set_gram(np.eye(16, dtype=np.float32))
        assert e.value.status_name == "NVFP4_ERR_SHAPE"
        bad = np.eye(32, dtype=np.float32)
        bad[0, 1] = 1.0
        with pytest.raises(nvfp4.NVFP4Error) as e:
            r.set_gram(bad)
        assert e.value.status_name == "NVFP4_ERR_INVALID_VALUE"
        with pytest.raises(nvfp4.NVFP4Error) as e:
            r.set(iterations=-1)
        assert e.value.status_name == "NVFP4_ERR_INVALID_VALUE"
        with pytest.raises(TypeError):
            r.set(no_such=1)
        r.set_gram(H.astype(np.float32))
        seen = []
        r.set(progress_interval=1)
        r.set_progress(lambda it, l: seen.append((it, l)) or it >= 3)  # cancel at iteration 3
        with pytest.raises(nvfp4.NVFP4Error) as e:
            r.run(W)
        assert e.value.status_name == "NVFP4_ERR_CANCELLED"
        assert seen and seen[-1][0] == 3
        r.set_progress(None)
        q = r.run(W)
        assert q.codes.shape == (8, 16)
        assert r.results()["iterations_run"] == 7


def test_start_from_another_scale_method():
    W, X, H = layer(16, 64, 256, seed=4)
    with nvfp4.Rounder(16, 64, method="faar", iterations=50) as r:
        r.set_scale_method("4over6")
        r.set_gram(H.astype(np.float32))
        q = r.run(W)
        res = r.results()
    assert res["loss_start"] == pytest.approx(loss(nvfp4.quantize(W, method="4over6"), W, H), rel=1e-3)
    assert loss(q, W, H) <= res["loss_start"] * (1 + 1e-6)
