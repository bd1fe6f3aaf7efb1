"""The nvfp4 command on safetensors checkpoints: the written round trip through the safetensors
package and an independent numpy implementation of ModelOpt's dequantisation, sharded
checkpoints, the compressed-tensors variant, and damaged files."""
import json
import os
import struct
import subprocess

import ml_dtypes
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import nvfp4

# safetensors' numpy loader looks these up on the numpy module.
if not hasattr(np, "float8_e4m3fn"):
    np.float8_e4m3fn = ml_dtypes.float8_e4m3fn
if not hasattr(np, "bfloat16"):
    np.bfloat16 = ml_dtypes.bfloat16

E2M1_VALUES = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def modelopt_dequantize(weight, weight_scale, weight_scale_2):
    """ModelOpt's NVFP4QTensor.dequantize, written from its description (research §3.5, §4.2):
    unpack (low nibble = even column), look up E2M1, multiply by the per-block scale
    float(weight_scale) * weight_scale_2."""
    rows, half = weight.shape
    codes = np.empty((rows, half * 2), np.uint8)
    codes[:, 0::2] = weight & 0x0F
    codes[:, 1::2] = weight >> 4
    values = E2M1_VALUES[codes]
    block = weight_scale.astype(np.float32) * np.float32(weight_scale_2)
    return (values * np.repeat(block, 16, axis=1)).astype(np.float32)


def load(path):
    with safe_open(path, framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def model(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)

    def w(o, i):
        x = rng.standard_t(4, size=(o, i)) * 0.02 * np.exp(0.3 * rng.standard_normal((o, 1)))
        return x.astype(np.float32).astype(dtype)

    return {
        "model.embed_tokens.weight": w(64, 48),
        "model.layers.0.self_attn.q_proj.weight": w(48, 48),
        "model.layers.0.mlp.up_proj.weight": w(96, 48),
        "model.layers.0.mlp.down_proj.weight": w(48, 96),
        "model.layers.0.input_layernorm.weight": np.ones(48, np.float32),
        "model.layers.0.odd_proj.weight": w(8, 40),  # 40 is not a multiple of 16: kept
        "model.layers.0.counter": np.arange(5, dtype=np.int64),
        "lm_head.weight": w(64, 48),
    }


def run(cmd, *args, check=True):
    p = subprocess.run([cmd, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode >= 0, "killed by signal %d: %s" % (-p.returncode, p.stderr)
    if check:
        assert p.returncode == 0, p.stderr + p.stdout
    return p


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    tensors = model()
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": 48}))
    return d / "model.safetensors", tensors


def test_round_trip_modelopt(nvfp4_cmd, src, tmp_path):
    path, orig = src
    out = tmp_path / "out" / "model.safetensors"
    out.parent.mkdir()
    p = run(nvfp4_cmd, "quantize", path, out, "--no-progress")
    assert "rel.err" in p.stdout
    t, meta = load(str(out))
    assert meta["format"] == "pt"
    quantised = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"]
    for m in quantised:
        w, s, s2 = t[m + ".weight"], t[m + ".weight_scale"], t[m + ".weight_scale_2"]
        x = orig[m + ".weight"]
        assert w.dtype == np.uint8 and w.shape == (x.shape[0], x.shape[1] // 2)
        assert s.dtype == ml_dtypes.float8_e4m3fn and s.shape == (x.shape[0], x.shape[1] // 16)
        assert s2.dtype == np.float32 and s2.shape == ()
        assert m + ".input_scale" not in t
        # global decode scale = amax / (6 * 448)
        assert float(s2) == pytest.approx(np.max(np.abs(x)) / 2688.0, rel=1e-6)
        ours = nvfp4.dequantize(w, s.view(np.uint8), float(s2), cols=x.shape[1])
        theirs = modelopt_dequantize(w, s, s2)
        # ModelOpt multiplies value * (scale * s2), the library (value * scale) * s2: the same
        # up to one rounding of the last product.
        np.testing.assert_allclose(ours, theirs, rtol=2.5e-7, atol=0)
        rel = np.sum((theirs.astype(np.float64) - x) ** 2) / np.sum(x.astype(np.float64) ** 2)
        assert 1e-4 < rel < 0.02
    # excluded, 1-D, non-float and odd-width tensors are kept byte for byte
    for k in ["model.embed_tokens.weight", "lm_head.weight", "model.layers.0.input_layernorm.weight",
              "model.layers.0.counter", "model.layers.0.odd_proj.weight"]:
        assert t[k].dtype == orig[k].dtype
        np.testing.assert_array_equal(t[k], orig[k])
    cfg = json.loads((out.parent / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    qc = cfg["quantization_config"]
    assert qc["quant_method"] == "modelopt" and qc["quant_algo"] == "W4A16_NVFP4"  # no input_scale: weight-only
    assert qc["config_groups"]["group_0"]["weights"] == {"dynamic": False, "num_bits": 4, "type": "float",
                                                         "group_size": 16}
    assert set(qc["ignore"]) == {"model.embed_tokens", "lm_head", "model.layers.0.odd_proj"}
    hq = json.loads((out.parent / "hf_quant_config.json").read_text())
    assert hq["quantization"]["quant_algo"] == "W4A16_NVFP4" and hq["quantization"]["group_size"] == 16
    assert set(hq["quantization"]["exclude_modules"]) == set(qc["ignore"])
    p = run(nvfp4_cmd, "inspect", out)
    assert "OK: 3 NVFP4 layers" in p.stdout
    p = run(nvfp4_cmd, "compare", path, out)
    assert "3 NVFP4 tensors" in p.stdout


def test_numbers_agree_with_the_binding(nvfp4_cmd, src, tmp_path):
    # The command and quantize() are the same library call: bit-identical tensors.
    path, orig = src
    out = tmp_path / "o.safetensors"
    run(nvfp4_cmd, "quantize", path, out, "--method", "4over6", "--no-progress", "--quiet")
    t, _ = load(str(out))
    x = orig["model.layers.0.mlp.down_proj.weight"]
    q = nvfp4.quantize(x, method="4over6")
    np.testing.assert_array_equal(t["model.layers.0.mlp.down_proj.weight"], q.codes)
    np.testing.assert_array_equal(t["model.layers.0.mlp.down_proj.weight_scale"].view(np.uint8), q.scales)
    assert float(t["model.layers.0.mlp.down_proj.weight_scale_2"]) == np.float32(q.global_scale)


def test_bfloat16_and_input_scale(nvfp4_cmd, tmp_path):
    tensors = model(seed=3, dtype=ml_dtypes.bfloat16)
    tensors["model.layers.0.input_layernorm.weight"] = tensors["model.layers.0.input_layernorm.weight"].astype(
        ml_dtypes.bfloat16)
    save_file(tensors, str(tmp_path / "in.safetensors"))
    out = tmp_path / "q" / "m.safetensors"
    out.parent.mkdir()
    run(nvfp4_cmd, "quantize", tmp_path / "in.safetensors", out, "--input-scale", "0.125", "--no-progress")
    t, _ = load(str(out))
    m = "model.layers.0.mlp.up_proj"
    assert t[m + ".input_scale"].dtype == np.float32 and float(t[m + ".input_scale"]) == 0.125
    x = tensors[m + ".weight"].astype(np.float32)
    q = nvfp4.quantize(tensors[m + ".weight"])
    np.testing.assert_array_equal(t[m + ".weight"], q.codes)
    ref = modelopt_dequantize(t[m + ".weight"], t[m + ".weight_scale"], t[m + ".weight_scale_2"])
    assert np.sum((ref - x) ** 2) / np.sum(x ** 2) < 0.02
    cfg = json.loads((out.parent / "config.json").read_text())
    assert cfg["quantization_config"]["config_groups"]["group_0"]["input_activations"]["num_bits"] == 4
    assert cfg["quantization_config"]["quant_algo"] == "NVFP4"  # W4A4 with the activation scale


def test_compressed_tensors_variant(nvfp4_cmd, src, tmp_path):
    path, orig = src
    out = tmp_path / "ct" / "model.safetensors"
    out.parent.mkdir()
    run(nvfp4_cmd, "quantize", path, out, "--format", "compressed-tensors", "--no-progress")
    t, _ = load(str(out))
    m = "model.layers.0.mlp.up_proj"
    w, s, g = t[m + ".weight_packed"], t[m + ".weight_scale"], t[m + ".weight_global_scale"]
    assert m + ".weight" not in t
    assert w.dtype == np.uint8 and s.dtype == ml_dtypes.float8_e4m3fn and g.dtype == np.float32 and g.shape == (1,)
    x = orig[m + ".weight"]
    # stored as a divisor: the encode scale 2688 / amax
    assert float(g[0]) == pytest.approx(2688.0 / np.max(np.abs(x)), rel=1e-6)
    ref = modelopt_dequantize(w, s, np.float32(1.0) / g[0])
    assert np.sum((ref - x) ** 2) / np.sum(x ** 2) < 0.02
    qc = json.loads((out.parent / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["format"] == "nvfp4-pack-quantized"
    assert qc["config_groups"]["group_0"]["weights"]["strategy"] == "tensor_group"
    assert not (out.parent / "hf_quant_config.json").exists()
    p = run(nvfp4_cmd, "inspect", out)
    assert "compressed-tensors" in p.stdout
    p = run(nvfp4_cmd, "compare", path, out)
    assert "3 NVFP4 tensors" in p.stdout


def test_sharded_checkpoint(nvfp4_cmd, tmp_path):
    tensors = model(seed=5)
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:4], "model-00002-of-00002.safetensors": names[4:]}
    d = tmp_path / "sharded"
    d.mkdir()
    weight_map = {}
    for fn, ks in shards.items():
        save_file({k: tensors[k] for k in ks}, str(d / fn), metadata={"format": "pt"})
        weight_map.update({k: fn for k in ks})
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (d / "config.json").write_text("{}")
    (d / "tokenizer.json").write_text('{"tok": 1}')
    out = tmp_path / "sharded-nvfp4"
    p = run(nvfp4_cmd, "quantize", d, out, "--method", "max", "--exclude", "*down_proj*", "--no-progress")
    assert "keeping model.layers.0.mlp.down_proj.weight" in p.stderr
    idx = json.loads((out / "model.safetensors.index.json").read_text())
    wm = idx["weight_map"]
    total = 0
    for fn in shards:
        t, _ = load(str(out / fn))
        total += sum(v.nbytes for v in t.values())
        for k in t:
            assert wm[k] == fn
    assert idx["metadata"]["total_size"] == total
    assert "model.layers.0.mlp.up_proj.weight_scale_2" in wm
    assert wm["model.layers.0.mlp.down_proj.weight"] and "model.layers.0.mlp.down_proj.weight_scale" not in wm
    assert (out / "tokenizer.json").read_text() == '{"tok": 1}'
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]
    run(nvfp4_cmd, "inspect", out)
    p = run(nvfp4_cmd, "compare", d, out)
    assert "2 NVFP4 tensors" in p.stdout


# ---- damaged files -------------------------------------------------------------------------------

def header_and_data(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_raw(path, header, data, header_bytes=None):
    hb = header_bytes if header_bytes is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)


def damage(kind, src_path, dst_path):
    h, data = header_and_data(src_path)
    name = "model.layers.0.mlp.up_proj.weight"
    if kind == "truncated":
        raw = open(src_path, "rb").read()
        open(dst_path, "wb").write(raw[: len(raw) - 1000])
        # the tensor whose data reaches past the end
        return max((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][1])
    if kind == "bad-json":
        hb = json.dumps(h).encode()
        hb = hb[:-1] + b", }"  # a trailing comma: not JSON
        write_raw(dst_path, None, data, header_bytes=hb)
        return None
    if kind == "wrong-dtype":
        h[name]["dtype"] = "Q7"
    elif kind == "offsets-out-of-range":
        h[name]["data_offsets"][1] += 10 ** 9
    elif kind == "overlap":
        other = [k for k in h if k not in ("__metadata__", name)][0]
        a, b = h[name]["data_offsets"]
        h[other]["data_offsets"] = [a, a + h[other]["data_offsets"][1] - h[other]["data_offsets"][0]]
        name = None  # either of the two may be named
    elif kind == "shape-mismatch":
        h[name]["shape"] = [h[name]["shape"][0] + 1, h[name]["shape"][1]]
    elif kind == "negative-shape":
        h[name]["shape"] = [-1, 48]
    elif kind == "not-an-object":
        write_raw(dst_path, None, data, header_bytes=b'["not", "an", "object"]')
        return None
    write_raw(dst_path, h, data)
    return name


KINDS = ["truncated", "bad-json", "wrong-dtype", "offsets-out-of-range", "overlap", "shape-mismatch",
         "negative-shape", "not-an-object"]


def assert_clean_failure(p, tensor, out_dir, out):
    assert 0 < p.returncode < 128, p.returncode
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("nvfp4: error:")
    if tensor:
        assert "'%s'" % tensor in lines[0]
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(out_dir) if ".tmp." in f]


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_input_fails_cleanly(nvfp4_cmd, src, tmp_path, kind):
    path, _ = src
    bad = tmp_path / ("bad-%s.safetensors" % kind)
    tensor = damage(kind, str(path), str(bad))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "model.safetensors"
    p = run(nvfp4_cmd, "quantize", bad, out, "--no-progress", check=False)
    assert_clean_failure(p, tensor, out_dir, out)
    # inspect and compare refuse the same file the same way
    for args in (["inspect", bad], ["compare", path, bad]):
        q = run(nvfp4_cmd, *args, check=False)
        assert 0 < q.returncode < 128 and len(q.stderr.strip().splitlines()) == 1, q.stderr


def quantised(nvfp4_cmd, src, tmp_path):
    path, _ = src
    out = tmp_path / "good" / "model.safetensors"
    out.parent.mkdir()
    run(nvfp4_cmd, "quantize", path, out, "--no-progress", "--quiet")
    return out


@pytest.mark.parametrize("kind", ["scale-dtype", "scale-shape", "bad-scale-byte", "global-scale-nan",
                                  "missing-global"])
def test_inspect_catches_bad_nvfp4_layers(nvfp4_cmd, src, tmp_path, kind):
    good = quantised(nvfp4_cmd, src, tmp_path)
    h, data = header_and_data(str(good))
    m = "model.layers.0.mlp.up_proj"
    data = bytearray(data)
    named = m + ".weight_scale"
    if kind == "scale-dtype":
        h[named]["dtype"] = "U8"
    elif kind == "scale-shape":
        h[named]["shape"] = [h[named]["shape"][0] // 2, h[named]["shape"][1] * 2]
    elif kind == "bad-scale-byte":
        data[h[named]["data_offsets"][0] + 5] = 0x7F
    elif kind == "global-scale-nan":
        named = m + ".weight_scale_2"
        a = h[named]["data_offsets"][0]
        data[a:a + 4] = struct.pack("<f", float("nan"))
    elif kind == "missing-global":
        named = m + ".weight"
        g = h.pop(m + ".weight_scale_2")
        # keep the file valid: move the 4 bytes into a harmless tensor of the same size
        h["padding"] = {"dtype": "F32", "shape": [1], "data_offsets": g["data_offsets"]}
    bad = tmp_path / "bad.safetensors"
    write_raw(str(bad), h, bytes(data))
    p = run(nvfp4_cmd, "inspect", bad, check=False)
    assert p.returncode == 1
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nvfp4: error:") and named in err[0], p.stderr
    assert "FAILED" in p.stdout
    # and the dequantising compare does not go on with it either (the bad byte is refused by the library)
    q = run(nvfp4_cmd, "compare", src[0], bad, check=False)
    assert q.returncode != 0 and q.stderr.count("\n") == 1


def test_good_output_passes_inspect_and_writes_no_leftovers(nvfp4_cmd, src, tmp_path):
    out = quantised(nvfp4_cmd, src, tmp_path)
    p = run(nvfp4_cmd, "inspect", out)
    assert p.stderr == ""
    assert sorted(os.listdir(out.parent)) == ["config.json", "hf_quant_config.json", "model.safetensors"]


def test_refuses_to_overwrite_a_nonempty_directory_and_its_input(nvfp4_cmd, src, tmp_path):
    path, _ = src
    d = tmp_path / "full"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    p = run(nvfp4_cmd, "quantize", path, str(d) + "/", check=False)
    assert p.returncode == 1 and "not empty" in p.stderr
    assert os.listdir(d) == ["keep.txt"]
    p = run(nvfp4_cmd, "quantize", path, path, check=False)
    assert p.returncode == 1 and "input" in p.stderr


def test_cuda_backend(nvfp4_cmd, src, tmp_path):
    p = run(nvfp4_cmd, "quantize", src[0], tmp_path / "x.safetensors", "--backend", "cuda", "--no-progress",
            check=False)
    if not nvfp4.has_backend("cuda"):
        assert p.returncode == 1 and "CUDA backend not available" in p.stderr
        assert not (tmp_path / "x.safetensors").exists()
        return
    # With a GPU: the same bytes as the CPU backend.
    assert p.returncode == 0, p.stderr
    run(nvfp4_cmd, "quantize", src[0], tmp_path / "y.safetensors", "--no-progress")
    a, _ = load(str(tmp_path / "x.safetensors"))
    b, _ = load(str(tmp_path / "y.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.atleast_1d(a[k]).view(np.uint8), np.atleast_1d(b[k]).view(np.uint8))


def test_rounder_methods_run_or_say_not_available(nvfp4_cmd, src, tmp_path):
    for m in ("faar", "gptq"):
        out = tmp_path / m / "model.safetensors"
        out.parent.mkdir()
        p = run(nvfp4_cmd, "quantize", src[0], out, "--method", m, "--iterations", "20", "--no-progress",
                check=False)
        if nvfp4.has_rounder():
            assert p.returncode == 0, p.stderr
            run(nvfp4_cmd, "inspect", out)
        else:
            assert p.returncode == 1 and "not available in this build" in p.stderr


def test_demo_runs(nvfp4_cmd, tmp_path):
    p = run(nvfp4_cmd, "demo", "--small", "--iterations", "10", "--keep", tmp_path / "demo")
    assert "max" in p.stdout and "FAILED" not in p.stdout
    rows = [l.split() for l in p.stdout.splitlines() if l.startswith(("max ", "4over6 "))]
    assert rows and all(float(r[1]) < 0.02 for r in rows)
    run(nvfp4_cmd, "inspect", tmp_path / "demo" / "max" / "model.safetensors")


@pytest.mark.skipif(not nvfp4.has_rounder(), reason="no rounder in this libnvfp4")
def test_calibration_file_steers_gptq(nvfp4_cmd, src, tmp_path):
    path, orig = src
    rng = np.random.default_rng(8)
    m_in, m_gram = "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"
    X1 = (rng.standard_normal((256, 4)) @ rng.standard_normal((4, 48)) + 0.1 * rng.standard_normal((256, 48)))
    X2 = (rng.standard_normal((256, 4)) @ rng.standard_normal((4, 96)) + 0.1 * rng.standard_normal((256, 96)))
    H2 = (X2.T @ X2 / 256).astype(np.float32)
    calib = tmp_path / "calib.safetensors"
    save_file({m_in + ".inputs": X1.astype(np.float32), m_gram + ".gram": H2}, str(calib))
    out_dir = tmp_path / "gptq"
    out_dir.mkdir()
    p = run(nvfp4_cmd, "quantize", path, out_dir / "m.safetensors", "--method", "gptq", "--calibration", calib,
            "--no-progress")
    assert "1 layer had no calibration data" in p.stdout  # q_proj
    t, _ = load(str(out_dir / "m.safetensors"))
    H1 = X1.T @ X1 / 256
    for m, H in ((m_in, H1), (m_gram, H2.astype(np.float64))):
        W = orig[m + ".weight"].astype(np.float64)
        q_g = nvfp4.dequantize(t[m + ".weight"], t[m + ".weight_scale"].view(np.uint8),
                               float(t[m + ".weight_scale_2"]), cols=W.shape[1])
        q_r = nvfp4.dequantize(*nvfp4.quantize(orig[m + ".weight"]), cols=W.shape[1])
        l_g = np.trace((q_g - W) @ H @ (q_g - W).T)
        l_r = np.trace((q_r - W) @ H @ (q_r - W).T)
        assert l_g < l_r
    bad = tmp_path / "bad-calib.safetensors"
    save_file({m_gram + ".gram": np.eye(5, dtype=np.float32)}, str(bad))
    out = tmp_path / "x" / "m.safetensors"
    out.parent.mkdir()
    p = run(nvfp4_cmd, "quantize", path, out, "--method", "gptq", "--calibration", bad, "--no-progress", check=False)
    errors = [l for l in p.stderr.splitlines() if l.startswith("nvfp4: error:")]
    assert p.returncode == 1 and len(errors) == 1 and m_gram + ".gram" in errors[0]
    assert not out.exists()


def test_interrupt_leaves_nothing_behind(nvfp4_cmd, tmp_path):
    import signal
    import time
    rng = np.random.default_rng(9)
    tensors = {"model.layers.%d.mlp.up_proj.weight" % i: rng.standard_normal((256, 512)).astype(np.float32)
               for i in range(8)}
    save_file(tensors, str(tmp_path / "in.safetensors"))
    for out in (tmp_path / "o" / "m.safetensors", tmp_path / "dir-out"):
        (tmp_path / "o").mkdir(exist_ok=True)
        method = ["--method", "faar", "--iterations", "1000000"] if nvfp4.has_rounder() else ["--method", "soar"]
        args = [nvfp4_cmd, "quantize", str(tmp_path / "in.safetensors"), str(out) + ("/" if "dir" in out.name else "")]
        p = subprocess.Popen(args + method + ["--no-progress"], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        time.sleep(1.0)
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
        if p.returncode == 0:
            pytest.skip("finished before the signal")
        assert p.returncode == -signal.SIGINT
        assert not out.exists()
        leftovers = [f for d in (tmp_path, tmp_path / "o") for f in os.listdir(d) if ".tmp." in f]
        assert not leftovers
