#!/usr/bin/env python3
"""Converts a llama2.c (version-0 export) checkpoint such as stories260K.bin to a safetensors
file with Hugging Face Llama tensor names, so that `nvfp4 quantize` can run on real weights.

    python3 examples/python/llama2c_to_safetensors.py stories260K.bin out/model.safetensors

Layout (llama2.c run.c): 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len), then float32 arrays: token embedding, attention RMSNorm gains, wq, wk, wv, wo, FFN
RMSNorm gains, w1, w2, w3, final RMSNorm gain, two legacy RoPE tables, and the classifier when
vocab_size < 0 (otherwise it is the embedding). Matrices are [out_features, in_features].
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors.numpy import save_file


def convert(src, dst):
    raw = open(src, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    kv_dim = dim * n_kv // n_heads
    head = dim // n_heads
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > data.size:
            raise ValueError("%s: truncated at array of shape %s" % (src, shape))
        a = data[pos:pos + n].reshape(shape).astype(np.float32)
        pos += n
        return a

    t = {}
    emb = take(vocab, dim)
    t["model.embed_tokens.weight"] = emb
    rms_att = take(n_layers, dim)
    wq, wk = take(n_layers, dim, dim), take(n_layers, kv_dim, dim)
    wv, wo = take(n_layers, kv_dim, dim), take(n_layers, dim, dim)
    rms_ffn = take(n_layers, dim)
    w1, w2, w3 = take(n_layers, hidden, dim), take(n_layers, dim, hidden), take(n_layers, hidden, dim)
    t["model.norm.weight"] = take(dim)
    take(seq_len, head // 2)
    take(seq_len, head // 2)
    t["lm_head.weight"] = emb.copy() if shared else take(vocab, dim)
    for i in range(n_layers):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = rms_att[i]
        t[p + "self_attn.q_proj.weight"] = wq[i]
        t[p + "self_attn.k_proj.weight"] = wk[i]
        t[p + "self_attn.v_proj.weight"] = wv[i]
        t[p + "self_attn.o_proj.weight"] = wo[i]
        t[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        t[p + "mlp.gate_proj.weight"] = w1[i]
        t[p + "mlp.down_proj.weight"] = w2[i]
        t[p + "mlp.up_proj.weight"] = w3[i]
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in t.items()}, dst, metadata={"format": "pt"})
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
           "intermediate_size": hidden, "num_hidden_layers": n_layers, "num_attention_heads": n_heads,
           "num_key_value_heads": n_kv, "vocab_size": vocab, "max_position_embeddings": seq_len,
           "tie_word_embeddings": shared, "torch_dtype": "float32"}
    with open(os.path.join(os.path.dirname(os.path.abspath(dst)), "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return len(t)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: llama2c_to_safetensors.py MODEL.bin OUT.safetensors")
    n = convert(sys.argv[1], sys.argv[2])
    print("wrote %d tensors to %s" % (n, sys.argv[2]))
