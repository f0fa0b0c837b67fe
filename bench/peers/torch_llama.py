#!/usr/bin/env python3
"""PyTorch peer of `braid bench`: braid's presets, run the way plain PyTorch runs them.

What is measured (tokens/s, median over -r repetitions after one warm-up repetition):
  ppN  prompt processing: one eager forward of N tokens from an empty cache, attention by
       F.scaled_dot_product_attention(is_causal=True); logits of the last token only, like
       braid's prompt graph.
  tgN  token generation: N single-token decode steps from an empty cache, each step
       synchronized (what braid bench does), in three modes:
         eager          PyTorch issues every kernel from Python, one stream;
         graph          one decode step captured once into a torch.cuda.CUDAGraph and replayed:
                        token id and position are static device tensors, the KV cache is written
                        at an index tensor and attention masks by position, so one graph serves
                        every step;
         graph-streams  the same with Q/K/V, gate/up and the MoE expert slots on side streams
                        (fork/join by wait_stream inside the capture), like braid's branch plans.
Timing uses CUDA events around the whole test, so it is wall-clock for a synchronized caller.

The model: LLaMA (and Mixtral for moe-8x1b) as in src/model/llama_graph.cpp, random weights
seeded (uniform, variance 1/fan_in; not braid's generator, so not the same values), f16 weight
matrices, f32 norm and router weights, f16 activations and f16 KV cache (braid's cache is f32),
RMSNorm eps 1e-5, RoPE base 10000 on adjacent pairs, grouped-query attention, a 2048-slot cache
preallocated. Every decode step computes the LM head (the full 32000 logits): these numbers
include it, unlike the PyTorch numbers quoted in issue 7.

Costs of static shapes (graph modes only): attention reads all 2048 cache slots, masked, where
eager reads the filled ones; Mixtral's two selected experts are gathered by a device index
(index_select copies their weights) where eager reads the routing on the host (one sync per
layer) and uses the expert weights in place. Needs PyTorch 2.5 or later.
"""
import argparse
import json
import math
import statistics
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

N_VOCAB, N_CTX, RMS_EPS, ROPE_BASE = 32000, 2048, 1e-5, 10000.0
# name: (n_embd, n_ff, n_head, n_head_kv, n_layer, n_expert, n_expert_used), as src/model/presets.cpp
PRESETS = {
    "tiny-256": (256, 768, 8, 8, 8, 0, 0),
    "llama-1b": (2048, 8192, 32, 8, 16, 0, 0),
    "llama-7b": (4096, 11008, 32, 32, 32, 0, 0),
    "moe-8x1b": (2048, 5632, 32, 8, 16, 8, 2),
}
MODES = ("eager", "graph", "graph-streams")


def config(name, d, ff, heads, kv_heads, layers, experts=0, used=0):
    return SimpleNamespace(name=name, d=d, ff=ff, heads=heads, kv_heads=kv_heads, layers=layers, experts=experts,
                           used=used, head_dim=d // heads)


def preset_config(name, layers=None):
    c = config(name, *PRESETS[name])
    c.layers = layers or c.layers
    return c


def bench_tokens(n):
    """The token ids braid bench uses: deterministic, varied, below the vocabulary size."""
    return [(i * 7919 + 1) % N_VOCAB for i in range(n)]


def rms_norm(x, weight):  # in f32, like braid
    return F.rms_norm(x.float(), (x.shape[-1],), weight, RMS_EPS).to(x.dtype)


def swiglu_ffn(h, gate, up, down):
    return F.linear(F.silu(F.linear(h, gate)) * F.linear(h, up), down)


class Llama:
    def __init__(self, cfg, device, dtype, seed):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)

        def matrix(*shape):  # rows of fan_in = shape[-1]; variance 1/fan_in keeps activations' scale
            spread = math.sqrt(3.0 / shape[-1])
            return torch.empty(shape, device=device, dtype=dtype).uniform_(-spread, spread, generator=gen)

        def norm():
            return torch.empty(cfg.d, device=device).uniform_(0.9, 1.1, generator=gen)

        d, ff, kv, E = cfg.d, cfg.ff, cfg.kv_heads * cfg.head_dim, cfg.experts
        self.embedding = torch.empty(N_VOCAB, d, device=device, dtype=dtype).uniform_(-1, 1, generator=gen)
        self.layers = []
        for _ in range(cfg.layers):
            L = SimpleNamespace()
            L.attn_norm, L.wq, L.wk, L.wv, L.wo = norm(), matrix(d, d), matrix(kv, d), matrix(kv, d), matrix(d, d)
            L.ffn_norm = norm()
            if cfg.experts == 0:
                L.gate, L.up, L.down = matrix(ff, d), matrix(ff, d), matrix(d, ff)
            else:
                L.router = matrix(E, d).float()
                L.gate_exps, L.up_exps, L.down_exps = matrix(E, ff, d), matrix(E, ff, d), matrix(E, d, ff)
            self.layers.append(L)
        self.output_norm, self.output = norm(), matrix(N_VOCAB, d)

        cache_shape = (cfg.layers, cfg.kv_heads, N_CTX, cfg.head_dim)
        self.k_cache = torch.zeros(cache_shape, device=device, dtype=dtype)
        self.v_cache = torch.zeros(cache_shape, device=device, dtype=dtype)
        half = cfg.head_dim // 2
        inv_freq = ROPE_BASE ** (-torch.arange(half, device=device, dtype=torch.float32) * 2 / cfg.head_dim)
        angles = torch.arange(N_CTX, device=device, dtype=torch.float32)[:, None] * inv_freq
        self.cos, self.sin = angles.cos(), angles.sin()
        self.slots = torch.arange(N_CTX, device=device)
        self.side_streams = []  # set by capture(streams=True): branches run on these

    def reset(self):
        """Empty cache (not timed; braid bench's reset clears its cache too)."""
        self.k_cache.zero_()
        self.v_cache.zero_()

    def branches(self, *fns):
        """Runs independent branches: the first on the current stream, the others on side
        streams forked from it and joined back; serially when there are no side streams."""
        if not self.side_streams:
            return [f() for f in fns]
        main = torch.cuda.current_stream()
        streams = [main] + self.side_streams[: len(fns) - 1]
        assert len(streams) == len(fns), "more branches than streams"
        for s in streams[1:]:
            s.wait_stream(main)  # fork before the main branch is issued
        results = []
        for s, f in zip(streams, fns):
            with torch.cuda.stream(s):
                results.append(f())
        for s in streams[1:]:
            main.wait_stream(s)  # join: every later use of the results is ordered after them
        return results

    def rope(self, x, pos):
        """Rotates adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/head_dim)."""
        cos = self.cos.index_select(0, pos)[:, None, :]
        sin = self.sin.index_select(0, pos)[:, None, :]
        pairs = x.float().unflatten(-1, (-1, 2))
        x0, x1 = pairs[..., 0], pairs[..., 1]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2).to(x.dtype)

    def attention(self, l, q, k, v, pos, host_pos, masked):
        """q: (n, heads, hd); k, v: (n, kv_heads, hd) at positions pos. Returns (n, d)."""
        c, n = self.cfg, q.shape[0]
        k_cache, v_cache = self.k_cache[l], self.v_cache[l]  # (kv_heads, N_CTX, hd)
        k_cache.index_copy_(1, pos, k.transpose(0, 1))
        v_cache.index_copy_(1, pos, v.transpose(0, 1))
        if n > 1:  # a prompt from position 0: causal attention over its own keys and values
            assert host_pos == 0, "prompts start at position 0"
            qs, ks, vs = (t.transpose(0, 1)[None] for t in (q, k, v))
            a = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, enable_gqa=True)
            return a[0].transpose(0, 1).reshape(n, c.d)
        # One query: head h reads kv head h // group, so the heads of a group are adjacent.
        if host_pos is None:  # static: every slot, the ones after pos masked out
            keys, values = k_cache, v_cache
        else:
            keys, values = k_cache[:, : host_pos + 1], v_cache[:, : host_pos + 1]
        qg = q.view(c.kv_heads, c.heads // c.kv_heads, c.head_dim) * (1.0 / math.sqrt(c.head_dim))
        scores = torch.matmul(qg, keys.transpose(1, 2)).float()
        if host_pos is None:
            scores = scores.masked_fill(masked, float("-inf"))
        probs = torch.softmax(scores, dim=-1).to(q.dtype)
        return torch.matmul(probs, values).reshape(1, c.d)

    def moe(self, L, h, static):
        c = self.cfg
        router = F.linear(h.float(), L.router)  # (n, experts), f32 like braid
        top, ids = router.topk(c.used, dim=-1)
        weights = torch.softmax(top, dim=-1)  # softmax over the selected experts' logits
        if static:  # one token, routing stays on the device: gather each slot's expert weights
            def slot(s):
                e = ids[0, s : s + 1]
                y = swiglu_ffn(h, L.gate_exps.index_select(0, e)[0], L.up_exps.index_select(0, e)[0],
                               L.down_exps.index_select(0, e)[0])
                return y.float() * weights[0, s]

            return sum(self.branches(*[lambda s=s: slot(s) for s in range(c.used)])).to(h.dtype)
        ids_host = ids.cpu()  # eager PyTorch reads the routing on the host: one sync per layer
        out = torch.zeros(h.shape, device=h.device, dtype=torch.float32)
        for e in ids_host.unique().tolist():
            tok, slot = (ids_host == e).nonzero(as_tuple=True)
            tok, slot = tok.to(h.device), slot.to(h.device)
            y = swiglu_ffn(h[tok], L.gate_exps[e], L.up_exps[e], L.down_exps[e])
            out.index_add_(0, tok, y.float() * weights[tok, slot].unsqueeze(1))
        return out.to(h.dtype)

    def forward(self, tokens, pos, host_pos=None):
        """tokens, pos: (n,) device tensors. host_pos: the first position when the caller knows
        it (eager); None for a static step (one token, no host values: CUDA-graph capturable).
        Returns the logits of the last token, (1, N_VOCAB)."""
        c, n = self.cfg, tokens.shape[0]
        static = host_pos is None
        masked = self.slots > pos if static else None  # cache slots a static step must not read
        x = F.embedding(tokens, self.embedding)
        for l, L in enumerate(self.layers):
            h = rms_norm(x, L.attn_norm)
            q, k, v = self.branches(lambda: F.linear(h, L.wq), lambda: F.linear(h, L.wk),
                                    lambda: F.linear(h, L.wv))
            q = self.rope(q.view(n, c.heads, c.head_dim), pos)
            k = self.rope(k.view(n, c.kv_heads, c.head_dim), pos)
            a = self.attention(l, q, k, v.view(n, c.kv_heads, c.head_dim), pos, host_pos, masked)
            x = x + F.linear(a, L.wo)
            h = rms_norm(x, L.ffn_norm)
            if c.experts == 0:
                gate, up = self.branches(lambda: F.linear(h, L.gate), lambda: F.linear(h, L.up))
                f = F.linear(F.silu(gate) * up, L.down)
            else:
                f = self.moe(L, h, static)
            x = x + f
        return F.linear(rms_norm(x[-1:], self.output_norm), self.output)

    def prompt(self, token_list):
        """Prompt processing from position 0 (the ids are uploaded inside, as braid does)."""
        tokens = torch.tensor(token_list, dtype=torch.long).to(self.device)
        return self.forward(tokens, torch.arange(len(token_list), device=self.device), host_pos=0)

    def eager_step(self):
        """A decode step issued op by op: step(token, position) -> logits."""
        tok = torch.zeros(1, dtype=torch.long, device=self.device)
        pos = torch.zeros(1, dtype=torch.long, device=self.device)

        def step(token, position):
            tok.fill_(token)
            pos.fill_(position)
            return self.forward(tok, pos, host_pos=position)

        return step

    def capture(self, streams):
        """Captures one static decode step into a CUDA graph; returns step(token, position),
        which sets the static inputs and replays the graph."""
        self.side_streams = [torch.cuda.Stream() for _ in range(max(2, self.cfg.used - 1))] if streams else []
        tok = torch.zeros(1, dtype=torch.long, device=self.device)
        pos = torch.zeros(1, dtype=torch.long, device=self.device)
        warm = torch.cuda.Stream()  # warm-up off the default stream (cuBLAS handles, workspaces)
        warm.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(warm):
            for _ in range(3):
                self.forward(tok, pos)
        torch.cuda.current_stream().wait_stream(warm)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self.forward(tok, pos)
        self.side_streams = []

        def step(token, position):
            tok.fill_(token)
            pos.fill_(position)
            graph.replay()
            return logits

        return step


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds(device, fn):
    """Time of fn(): CUDA events on the GPU (fn synchronizes at its end), perf_counter on the CPU."""
    sync(device)
    if device.type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def time_test(model, run, n, reps):
    """tokens/s of each of `reps` repetitions of run() from an empty cache, after one warm-up."""
    tps = []
    for r in range(-1, reps):
        model.reset()
        s = seconds(model.device, run)
        if r >= 0:
            tps.append(n / s)
    return tps


def bench_preset(cfg, args, device, dtype):
    print(f"torch_llama: building {cfg.name} ({cfg.layers} layers)", file=sys.stderr)
    model = Llama(cfg, device, dtype, args.seed)
    label = f"{cfg.name} {'f16' if dtype == torch.float16 else 'f32'}"
    prompt, generated, rows = bench_tokens(args.n_prompt), bench_tokens(args.n_gen), []

    def generate(step):
        for i, token in enumerate(generated):
            step(token, i)
            sync(device)  # each step synchronized, like braid bench's eval

    def add(mode, test, tps):
        rows.append({"model": label, "mode": mode, "test": test, "tps": statistics.median(tps), "tps_runs": tps})
        print(f"torch_llama: {label} {mode} {test}: {rows[-1]['tps']:.2f} t/s", file=sys.stderr)

    with torch.inference_mode():
        if args.n_prompt > 0:
            tps = time_test(model, lambda: model.prompt(prompt), args.n_prompt, args.repetitions)
            add("eager", f"pp{args.n_prompt}", tps)
        for mode in args.modes if args.n_gen > 0 else []:
            step = model.eager_step() if mode == "eager" else model.capture(streams=mode == "graph-streams")
            add(mode, f"tg{args.n_gen}", time_test(model, lambda: generate(step), args.n_gen, args.repetitions))
            del step  # and with it the graph and its memory pool
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def check_decode_matches_prompt(cfg, n):
    """CPU f32: the logits after a prompt of n tokens equal those of a prompt of n-2 tokens
    followed by an eager step and a static step (the graph modes' math, without the graph)."""
    model = Llama(cfg, torch.device("cpu"), torch.float32, seed=1)
    tokens = bench_tokens(n)
    with torch.inference_mode():
        expected = model.prompt(tokens)
        model.reset()
        model.prompt(tokens[: n - 2])
        model.eager_step()(tokens[n - 2], n - 2)
        tok, pos = torch.tensor([tokens[n - 1]]), torch.tensor([n - 1])
        static = model.forward(tok, pos)
    err = (static - expected).abs().max().item()
    print(f"dry-run {cfg.name} ({cfg.layers} layers): prompt {n - 2} + 2 decode steps vs prompt {n}: "
          f"max |logit difference| {err:.2e}")
    if not torch.isfinite(static).all() or err > 1e-3 * max(1.0, expected.abs().max().item()):
        sys.exit("dry-run: decode steps disagree with the prompt")


def dry_run(args):
    """No GPU needed: checks the model's math on the CPU and runs the bench loop on tiny-256."""
    torch.manual_seed(0)
    check_decode_matches_prompt(preset_config("tiny-256", layers=2), 16)
    check_decode_matches_prompt(config("tiny-moe-gqa", 256, 512, 8, 2, 2, 4, 2), 16)
    args.modes, args.n_gen, args.repetitions = ["eager"], 2, 1
    args.n_prompt = min(args.n_prompt, 64)
    return bench_preset(preset_config("tiny-256", layers=2), args, torch.device("cpu"), torch.float32)


def markdown(rows):
    lines = ["| model | mode | test | t/s |", "| --- | --- | --- | ---: |"]
    lines += [f"| {r['model']} | {r['mode']} | {r['test']} | {r['tps']:.2f} |" for r in rows]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", action="append", choices=list(PRESETS), help="repeatable (default llama-1b)")
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt length, 0 to skip (default 512)")
    p.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens, 0 to skip (default 128)")
    p.add_argument("-r", "--repetitions", type=int, default=3, help="timed repetitions (default 3)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--layers", type=int, help="override the presets' layer count")
    p.add_argument("--seed", type=int, default=1, help="seed of the random weights")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON ('-' for stdout)")
    p.add_argument("--dry-run", action="store_true", help="CPU f32 check: tiny-256, 2 layers, eager only")
    args = p.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.modes):
        p.error(f"unknown mode in '{','.join(args.modes)}' (known: {', '.join(MODES)})")
    if args.repetitions < 1 or args.n_prompt < 0 or args.n_gen < 0:
        p.error("-r must be positive, -p and -n not negative")
    if max(args.n_prompt, args.n_gen) > N_CTX:
        p.error(f"tests must fit the context of {N_CTX}")

    if args.dry_run:
        device_name, rows = "cpu (dry run)", dry_run(args)
    else:
        if not torch.cuda.is_available():
            sys.exit("torch_llama: no CUDA device (use --dry-run for the CPU check)")
        device_name = torch.cuda.get_device_name()
        rows = []
        for name in args.preset or ["llama-1b"]:
            rows += bench_preset(preset_config(name, args.layers), args, torch.device("cuda"), torch.float16)

    print(f"device: {device_name}, torch {torch.__version__}\n")
    print(markdown(rows))
    if args.json:
        text = json.dumps({"device": device_name, "torch": torch.__version__, "rows": rows}, indent=2)
        with open(1 if args.json == "-" else args.json, "w", closefd=args.json != "-") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
