#!/usr/bin/env python3
"""Makes the tiny architecture test models in tests/data/arch and their reference logits.

For each architecture braid runs beyond plain LLaMA -- Llama 3 rope scaling, Qwen2, Qwen3, Phi-3 --
this builds a tiny random model with Hugging Face transformers, writes it to GGUF with
gguf-py in llama.cpp's conventions, and records transformers' logits for a fixed token
sequence at every position. tests/arch_reference_test.cpp checks braid against them.

A developer's tool, not run by CI (it needs torch):
    python -m venv /tmp/venv && /tmp/venv/bin/pip install torch transformers gguf numpy
    /tmp/venv/bin/python scripts/make_arch_test_models.py [out_dir]

Facts about llama.cpp's GGUF layout used here (from its converter, convert_hf_to_gguf.py):
- Tensor names: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output,
  attn_q_norm, attn_k_norm, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output
  (absent when the embeddings are tied), rope_freqs (Llama 3 scaling: per-pair factors
  by which each rope frequency is divided). Biases are "<name>.bias".
- A numpy array of shape [rows, cols] is a GGUF tensor of ne [cols, rows].
- For the "llama" architecture the converter permutes the rows of q and k (per head,
  from transformers' halves layout to adjacent pairs), so llama.cpp rotates adjacent
  pairs; for qwen2/qwen3 it writes them as they are and llama.cpp rotates NeoX-style.
- Keys live under the architecture's name: "qwen2.embedding_length", ...
- Phi-3 (arch "phi3"): transformers' packed qkv_proj and gate_up_proj are written as they
  are, as blk.N.attn_qkv and blk.N.ffn_up (gate's rows first); NeoX rope; its 4k models
  carry "phi3.attention.sliding_window".

Each model gets a minimal SentencePiece-style vocabulary (<unk>, <s>, </s> and 256 byte
tokens: 259 tokens), enough for any tool that wants one; only logits are compared.
The reference file <name>.ref.gguf holds metadata "reference.tokens" (the token ids)
and a tensor "logits" of ne [vocab, tokens] (f32).
"""
import math
import sys
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

VOCAB = 259
TOKENS = [1, 72, 101, 108, 108, 111, 32, 258, 7, 200, 150, 3, 99, 42, 250, 17]

COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, max_position_embeddings=256,
              bos_token_id=1, eos_token_id=2)


def models():
    # Llama 3: scaled rope with all three regimes within 8 pairs (head 16): wavelengths
    # 6.3 (kept), 32.5 (blended), >= 168 (divided by 8) against 64 / 4 and 64 / 1.
    llama3 = LlamaConfig(**COMMON, tie_word_embeddings=True,
                         rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                              low_freq_factor=1.0, high_freq_factor=4.0,
                                              original_max_position_embeddings=64))
    qwen2 = Qwen2Config(**COMMON, tie_word_embeddings=False, rope_parameters=dict(rope_type="default",
                                                                                    rope_theta=1000000.0))
    # Qwen3 with a head size (32) other than hidden / heads (16).
    qwen3 = Qwen3Config(**COMMON, head_dim=32, tie_word_embeddings=True,
                        rope_parameters=dict(rope_type="default", rope_theta=1000000.0))
    # Phi-3: packed projections, its own output.weight, a sliding window (longer than the
    # reference's tokens, so it does not bind; braid's context stops at it).
    phi3 = Phi3Config(**COMMON, pad_token_id=0, tie_word_embeddings=False, sliding_window=128,
                      rope_parameters=dict(rope_type="default", rope_theta=10000.0))
    return [("llama3", "llama", LlamaForCausalLM, llama3), ("qwen2", "qwen2", Qwen2ForCausalLM, qwen2),
            ("qwen3", "qwen3", Qwen3ForCausalLM, qwen3), ("phi3", "phi3", Phi3ForCausalLM, phi3)]


def randomize(model, seed):
    """Weights whose effects show in the logits (transformers' init is tiny)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(0.25 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def permute_rows(w, n_head):
    """Per head, transformers' [first halves; second halves] rows to adjacent pairs."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_factors(cfg, head_dim):
    r = cfg.rope_parameters
    base, factor = r["rope_theta"], r["factor"]
    low, high, old = r["low_freq_factor"], r["high_freq_factor"], r["original_max_position_embeddings"]
    out = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * base ** (i / head_dim)
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_vocab(w):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types([2, 3, 3] + [6] * 256)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)


def write_model(path, arch, cfg, model):
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{path.stem}")
    w.add_file_type(0)  # all f32
    w.add_vocab_size(cfg.vocab_size)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_rope_dimension_count(head_dim)
    if head_dim != cfg.hidden_size // cfg.num_attention_heads:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "phi3":
        w.add_sliding_window(cfg.sliding_window)
    write_vocab(w)

    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    if cfg.rope_parameters.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_factors(cfg, head_dim))
    parts = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
             "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
             "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
             "self_attn.v_proj.bias": "attn_v.bias", "self_attn.q_norm.weight": "attn_q_norm.weight",
             "self_attn.k_norm.weight": "attn_k_norm.weight", "self_attn.o_proj.weight": "attn_output.weight",
             "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
             "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
             "self_attn.qkv_proj.weight": "attn_qkv.weight", "mlp.gate_up_proj.weight": "ffn_up.weight"}
    for layer in range(cfg.num_hidden_layers):
        for hf, ours in parts.items():
            key = f"model.layers.{layer}.{hf}"
            if key not in sd:
                continue
            t = sd[key]
            if arch == "llama" and hf.startswith("self_attn.q_proj"):
                t = permute_rows(t, cfg.num_attention_heads)
            if arch == "llama" and hf.startswith("self_attn.k_proj"):
                t = permute_rows(t, cfg.num_key_value_heads)
            w.add_tensor(f"blk.{layer}.{ours}", np.ascontiguousarray(t))
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_reference(path, logits):
    w = gguf.GGUFWriter(str(path), "reference")
    w.add_array("reference.tokens", TOKENS)
    w.add_tensor("logits", np.ascontiguousarray(logits, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/arch"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for seed, (name, arch, cls, cfg) in enumerate(models(), start=1):
        cfg._attn_implementation = "eager"
        model = cls(cfg).float().eval()
        randomize(model, seed)
        if cfg.tie_word_embeddings:
            model.tie_weights()
        with torch.no_grad():
            logits = model(torch.tensor([TOKENS])).logits[0].float().numpy()  # [tokens, vocab]
        write_model(out / f"{name}.gguf", arch, cfg, model)
        write_reference(out / f"{name}.ref.gguf", logits)
        print(f"{name}: logits {logits.shape}, range [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
