#!/usr/bin/env python3
"""PyTorch peer of `braid bench`: braid's presets, run the fastest ways plain PyTorch runs them.

What is measured (tokens/s, median over -r repetitions after one warm-up repetition):
  ppN  prompt processing: one eager forward of N tokens from an empty cache, attention by
       F.scaled_dot_product_attention(is_causal=True); logits of the last token only, like
       braid's prompt graph.
  tgN  token generation: N single-token decode steps from an empty cache, each step
       synchronized (what braid bench does), every step computing the LM head (the full 32000
       logits), in four modes:
         eager          PyTorch issues every kernel from Python, one stream; attention reads the
                        filled cache slots (a slice by the host's position) and Mixtral's routing
                        is read on the host (one sync per layer), experts used in place;
         graph          a static decode step captured into a torch.cuda.CUDAGraph and replayed;
                        one graph per length bucket (see below);
         graph-streams  the same with Q/K/V and gate/up on two side streams (fork/join by
                        wait_stream inside the capture), like braid's branch plans;
         compile        the same static step through torch.compile(mode="reduce-overhead",
                        dynamic=False, fullgraph=True): Inductor's fused kernels replayed as CUDA
                        graphs (cudagraph trees), the KV cache, the weights and the token/position
                        inputs marked as static addresses (torch._dynamo.mark_static_address, as
                        Hugging Face's static cache does), one compiled graph per length bucket.
Timing uses CUDA events around the whole test, so it is wall-clock for a synchronized caller.
Compile mode's warm-up repetition compiles (tens of seconds per bucket); timed ones only replay.

The static step (graph, graph-streams, compile; one function, Llama.forward with `length`):
  - The token id and the position are static device tensors, written before each replay; the
    KV cache is written at the position by index_copy_, RoPE angles are looked up by it once
    per step (a complex product per rotation in eager and graph modes, as Meta's LLaMA code;
    real arithmetic under torch.compile, which Inductor fuses and complex products it does not).
  - Attention reads the first `length` cache slots, `length` being the position + 1 rounded up
    to a multiple of --bucket (default 128 slots), the slots past the position masked: the work
    scales with the filled length, and one graph (or compiled graph) per bucket serves every
    step in it, captured on the bucket's first step (in the warm-up repetition). tg128 from an
    empty cache uses one bucket of 128 slots.
  - Mixtral's routing stays on the device; the two selected experts' products are two Triton
    kernels (bench/peers/moe_triton.py) that read the expert id from device memory and the
    stacked expert weights in place (no copies), both slots in one launch; where Triton cannot
    be imported they are gathered by index_select (copies; a note on stderr says so).

The model: LLaMA (and Mixtral for moe-8x1b) as in src/model/llama_graph.cpp, random weights
seeded (uniform, variance 1/fan_in; not braid's generator, so not the same values), f16 weight
matrices and norm weights, f32 router weights, f16 activations and f16 KV cache (braid's cache is
f32), RMSNorm eps 1e-5, RoPE base 10000 on adjacent pairs, grouped-query attention, a 2048-slot
cache preallocated. Written as a PyTorch user who wants speed writes it (gpt-fast, vLLM): Q, K
and V stacked into one weight and gate and up into another, one product each (graph-streams
multiplies row slices of them, views, on its branches); q and k rotated together where they lie
side by side in that product's output; F.rms_norm in f16 (one fused kernel on CUDA); the
attention's softmax upcasting inside itself. About 20 operations a layer in a decode step
instead of the 32 of the first version (counted on the CPU with a TorchDispatchMode: every
operation that is not a view). Needs PyTorch 2.5 or later (compile mode: Triton and a C
compiler, as torch.compile on CUDA always does).

--check compares every decode mode's logits with eager's, step by step from an empty cache
(10 steps, 4-slot buckets: the steps cross bucket boundaries), and a prompt with a shorter
prompt + an eager and a static step. On a GPU the modes run for real (graphs captured,
torch.compile with reduce-overhead) in f16 on tiny-256, a small MoE with grouped-query
attention, and llama-1b and moe-8x1b cut to 2 layers. On the CPU (--device cpu) in f32 and f16
on the small models: the graph modes run the static step eagerly, compile uses torch.compile's
aot_eager backend (Dynamo's trace, guards and per-bucket recompiles; no Inductor) with the
copying experts (Dynamo traces Triton kernels only where Triton has a GPU), and the Triton
kernels run under TRITON_INTERPRET=1 in the graph modes.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import traceback
from types import SimpleNamespace

import torch
import torch.nn.functional as F

N_VOCAB, N_CTX, RMS_EPS, ROPE_BASE = 32000, 2048, 1e-5, 10000.0
BUCKET = 128  # attended slots of a static step: the position + 1 rounded up to a multiple of this
# name: (n_embd, n_ff, n_head, n_head_kv, n_layer, n_expert, n_expert_used), as src/model/presets.cpp
PRESETS = {
    "tiny-256": (256, 768, 8, 8, 8, 0, 0),
    "llama-1b": (2048, 8192, 32, 8, 16, 0, 0),
    "llama-7b": (4096, 11008, 32, 32, 32, 0, 0),
    "moe-8x1b": (2048, 5632, 32, 8, 16, 8, 2),
}
MODES = ("eager", "graph", "graph-streams", "compile")


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


def rms_norm(x, weight):
    """F.rms_norm in the model's dtype (one kernel on CUDA, f32 inside), weight in that dtype too."""
    return F.rms_norm(x, (x.shape[-1],), weight, RMS_EPS)


def swiglu_ffn(h, gate, up, down):
    return F.linear(F.silu(F.linear(h, gate)) * F.linear(h, up), down)


def copied_experts(x, ids, gate_exps, up_exps, down_exps):
    """routed_experts without Triton: each slot's expert weights gathered by index_select (a
    copy of them), then used. (used, n_embd) f32."""
    ys = []
    for s in range(ids.shape[0]):
        e = ids[s : s + 1]
        g, u, d = (w.index_select(0, e)[0] for w in (gate_exps, up_exps, down_exps))
        ys.append(swiglu_ffn(x[None], g, u, d).float())
    return torch.cat(ys)


def load_routed_experts():
    """The in-place expert kernels of moe_triton.py, or copied_experts where Triton is missing."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import moe_triton
        return moe_triton.routed_experts
    except ImportError as e:
        print(f"torch_llama: Triton not importable ({e}): static steps copy the routed experts' weights",
              file=sys.stderr)
        return copied_experts


class Llama:
    def __init__(self, cfg, device, dtype, seed, bucket=BUCKET):
        self.cfg, self.device, self.dtype, self.bucket = cfg, device, dtype, bucket
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)

        def matrix(*shape):  # rows of fan_in = shape[-1]; variance 1/fan_in keeps activations' scale
            spread = math.sqrt(3.0 / shape[-1])
            return torch.empty(shape, device=device, dtype=dtype).uniform_(-spread, spread, generator=gen)

        def norm():
            return torch.empty(cfg.d, device=device, dtype=dtype).uniform_(0.9, 1.1, generator=gen)

        d, ff, kv, E = cfg.d, cfg.ff, cfg.kv_heads * cfg.head_dim, cfg.experts
        self.embedding = torch.empty(N_VOCAB, d, device=device, dtype=dtype).uniform_(-1, 1, generator=gen)
        self.layers = []
        for _ in range(cfg.layers):
            L = SimpleNamespace()
            # Q, K and V stacked into one matrix, gate and up into another (as gpt-fast and vLLM
            # do): one product each (side streams multiply row slices of them, views).
            L.attn_norm, L.wqkv, L.wo = norm(), matrix(d + 2 * kv, d), matrix(d, d)
            L.ffn_norm = norm()
            if cfg.experts == 0:
                L.w13, L.down = matrix(2 * ff, d), matrix(d, ff)
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
        self.rotations = torch.stack((self.cos, self.sin), dim=-1)  # cos + i sin as (N_CTX, half, 2) reals
        self.slots = torch.arange(N_CTX, device=device)
        self.side_streams = []  # set while capturing graph-streams: branches run on these
        self.routed_experts = load_routed_experts() if cfg.experts else None

    def tensors(self):
        """Every tensor a decode step reads or writes besides its inputs: weights, cache, tables."""
        out = [self.embedding, self.output_norm, self.output, self.k_cache, self.v_cache, self.cos, self.sin,
               self.rotations, self.slots]
        for L in self.layers:
            out += [t for t in vars(L).values() if isinstance(t, torch.Tensor)]
        return out

    def reset(self):
        """Empty cache (not timed; braid bench's reset clears its cache too)."""
        self.k_cache.zero_()
        self.v_cache.zero_()

    def attended(self, position):
        """Cache slots a static step at `position` reads: position + 1 rounded up to the bucket."""
        return min(N_CTX, (position // self.bucket + 1) * self.bucket)

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

    def angles(self, pos, complex_rope):
        """The positions' rotations, looked up once for every layer: a complex (n, 1, half)
        tensor, or (cos, sin) as two real (n, 1, half) tensors."""
        if complex_rope:
            return torch.view_as_complex(self.rotations.index_select(0, pos))[:, None, :]
        return self.cos.index_select(0, pos)[:, None, :], self.sin.index_select(0, pos)[:, None, :]

    @staticmethod
    def rope(x, angles):
        """Rotates adjacent pairs (x[2i], x[2i+1]) by pos * base^(-2i/head_dim). Complex angles:
        one complex product (3 kernels, as Meta's LLaMA code does; fewer launches for eager and
        graphs); real (cos, sin): the same in real arithmetic, which Inductor fuses into one
        kernel (it does not fuse complex products)."""
        if isinstance(angles, torch.Tensor):
            rotated = torch.view_as_complex(x.float().unflatten(-1, (-1, 2))) * angles
            return torch.view_as_real(rotated).flatten(-2).to(x.dtype)
        cos, sin = angles
        pairs = x.float().unflatten(-1, (-1, 2))
        x0, x1 = pairs[..., 0], pairs[..., 1]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2).to(x.dtype)

    def qkv(self, L, h, angles):
        """Q, K and V of h, (n, heads or kv_heads, head_dim), q and k rotated: one product over
        the stacked weight, and one rotation over q and k, which lie side by side in its output.
        With side streams, three products over row slices of the weight (views) on the
        branches, and a rotation each for q and k."""
        c, n = self.cfg, h.shape[0]
        d, kv = c.d, c.kv_heads * c.head_dim
        if self.side_streams:
            wq, wk, wv = L.wqkv.split((d, kv, kv))
            q, k, v = self.branches(lambda: F.linear(h, wq), lambda: F.linear(h, wk), lambda: F.linear(h, wv))
            return (self.rope(q.view(n, c.heads, c.head_dim), angles),
                    self.rope(k.view(n, c.kv_heads, c.head_dim), angles), v.view(n, c.kv_heads, c.head_dim))
        qkv = F.linear(h, L.wqkv)
        qk = self.rope(qkv[:, : d + kv].view(n, c.heads + c.kv_heads, c.head_dim), angles)
        return qk[:, : c.heads], qk[:, c.heads :], qkv[:, d + kv :].view(n, c.kv_heads, c.head_dim)

    def ffn(self, L, h):
        """SwiGLU: one product over the stacked gate and up weights (row slices of it on the
        branches with side streams)."""
        if self.side_streams:
            wg, wu = L.w13.chunk(2)
            gate, up = self.branches(lambda: F.linear(h, wg), lambda: F.linear(h, wu))
        else:
            gate, up = F.linear(h, L.w13).chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, L.down)

    def attention(self, l, q, k, v, pos, host_pos, length, masked):
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
        # Eager reads the filled slots; a static step the bucket's `length` slots, those after
        # the position masked out.
        keys, values = k_cache[:, :length], v_cache[:, :length]
        qg = q.view(c.kv_heads, c.heads // c.kv_heads, c.head_dim) * (1.0 / math.sqrt(c.head_dim))
        scores = torch.matmul(qg, keys.transpose(1, 2))
        if masked is not None:
            scores = scores.masked_fill(masked, float("-inf"))
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)  # f32 inside the softmax
        return torch.matmul(probs, values).reshape(1, c.d)

    def moe(self, L, h, static, experts):
        c = self.cfg
        router = F.linear(h.float(), L.router)  # (n, experts), f32 like braid
        top, ids = router.topk(c.used, dim=-1)
        weights = torch.softmax(top, dim=-1)  # softmax over the selected experts' logits
        if static:  # one token, routing stays on the device: the experts read in place by id
            y = experts(h[0], ids[0], L.gate_exps, L.up_exps, L.down_exps)  # (used, d) f32
            return (y * weights[0, :, None]).sum(0, keepdim=True).to(h.dtype)
        ids_host = ids.cpu()  # eager PyTorch reads the routing on the host: one sync per layer
        out = torch.zeros(h.shape, device=h.device, dtype=torch.float32)
        for e in ids_host.unique().tolist():
            tok, slot = (ids_host == e).nonzero(as_tuple=True)
            tok, slot = tok.to(h.device), slot.to(h.device)
            y = swiglu_ffn(h[tok], L.gate_exps[e], L.up_exps[e], L.down_exps[e])
            out.index_add_(0, tok, y.float() * weights[tok, slot].unsqueeze(1))
        return out.to(h.dtype)

    def forward(self, tokens, pos, host_pos=None, length=None, experts=None, complex_rope=True):
        """tokens, pos: (n,) device tensors. host_pos: the first position when the caller knows
        it (eager, prompts). Otherwise a static step: one token, `length` cache slots attended
        (a Python int, the bucket), no host reads of device values, only fixed shapes: what the
        graph modes capture and compile mode compiles. experts: the static step's routed-experts
        function (default self.routed_experts); complex_rope: see rope. Returns the last
        token's logits, (1, N_VOCAB)."""
        c, n = self.cfg, tokens.shape[0]
        static = host_pos is None
        if static:
            assert n == 1 and length is not None, "a static step is one token with a bucket length"
            masked = self.slots[:length] > pos  # slots of the bucket past the position
        else:
            length, masked = host_pos + n, None
        angles = self.angles(pos, complex_rope)
        x = F.embedding(tokens, self.embedding)
        for l, L in enumerate(self.layers):
            q, k, v = self.qkv(L, rms_norm(x, L.attn_norm), angles)
            a = self.attention(l, q, k, v, pos, host_pos, length, masked)
            x = x + F.linear(a, L.wo)
            h = rms_norm(x, L.ffn_norm)
            if c.experts == 0:
                f = self.ffn(L, h)
            else:
                f = self.moe(L, h, static, experts or self.routed_experts)
            x = x + f
        return F.linear(rms_norm(x[-1:], self.output_norm), self.output)

    def prompt(self, token_list):
        """Prompt processing from position 0 (the ids are uploaded inside, as braid does)."""
        tokens = torch.tensor(token_list, dtype=torch.long).to(self.device)
        return self.forward(tokens, torch.arange(len(token_list), device=self.device), host_pos=0)

    # ------------------------------------------------------------------ decode modes
    # Each returns step(token, position) -> logits (1, N_VOCAB), valid until the next step.

    def inputs(self):
        """The static inputs of a decode step: token id and position, (1,) device tensors."""
        return (torch.zeros(1, dtype=torch.long, device=self.device),
                torch.zeros(1, dtype=torch.long, device=self.device))

    def eager_step(self):
        tok, pos = self.inputs()

        def step(token, position):
            tok.fill_(token)
            pos.fill_(position)
            return self.forward(tok, pos, host_pos=position)

        return step

    def bucketed(self, run_of_length):
        """step(token, position) that writes the static inputs and runs the static step of the
        position's bucket; run_of_length(tok, pos, length) -> run() makes it on first use."""
        tok, pos = self.inputs()
        runs = {}

        def step(token, position):
            tok.fill_(token)
            pos.fill_(position)
            length = self.attended(position)
            if length not in runs:
                runs[length] = run_of_length(tok, pos, length)
            return runs[length]()

        step.inputs = (tok, pos)
        return step

    def graph_step(self, streams):
        """graph / graph-streams: one CUDA graph per bucket, captured on the bucket's first step
        (on the CPU the static step runs eagerly: same function, no graph)."""
        side = [torch.cuda.Stream() for _ in range(2)] if streams and self.device.type == "cuda" else []

        def run_of_length(tok, pos, length):
            if self.device.type != "cuda":
                return lambda: self.forward(tok, pos, length=length)
            return self.capture(tok, pos, length, side)

        return self.bucketed(run_of_length)

    def capture(self, tok, pos, length, side_streams):
        """Captures the static step for `length` slots; returns replay() -> logits. The warm-up
        runs write the same cache slot the step writes (the inputs are already set), so they
        change nothing; they create cuBLAS workspaces and compile the Triton kernels before capture."""
        self.side_streams = side_streams
        try:
            warm = torch.cuda.Stream()  # warm-up off the default stream, as torch.cuda.graph asks
            warm.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(warm):
                for _ in range(3):
                    self.forward(tok, pos, length=length)
            torch.cuda.current_stream().wait_stream(warm)
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                logits = self.forward(tok, pos, length=length)
            torch.cuda.synchronize()
        finally:
            self.side_streams = []

        def replay():
            graph.replay()
            return logits

        return replay

    def compile_step(self):
        """compile: torch.compile(mode="reduce-overhead") of the static step, recompiled (and its
        CUDA graph recorded) once per bucket. On the CPU, the aot_eager backend (no Inductor)."""
        import torch._dynamo as dynamo

        buckets = N_CTX // self.bucket + 2
        for name in ("recompile_limit", "cache_size_limit"):  # one compiled graph per bucket
            if hasattr(dynamo.config, name):
                setattr(dynamo.config, name, max(getattr(dynamo.config, name), buckets))
                break
        cuda = self.device.type == "cuda"
        options = dict(mode="reduce-overhead") if cuda else dict(backend="aot_eager")
        experts = self.routed_experts
        if not cuda and experts is not copied_experts:
            # Dynamo traces Triton kernels only where Triton has a GPU; the interpreted ones cannot
            # be traced. The CPU check compiles the copying version instead (the kernels' math is
            # checked by the graph modes).
            experts = copied_experts
        compiled = torch.compile(
            lambda tok, pos, length: self.forward(tok, pos, length=length, experts=experts, complex_rope=False),
            fullgraph=True, dynamic=False, **options)
        begin = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
        for t in self.tensors():  # cudagraph trees read these in place instead of copying them in
            dynamo.mark_static_address(t)

        def run_of_length(tok, pos, length):
            def run():
                if cuda and begin is not None:
                    begin()  # a new generation step: the last step's outputs may be overwritten
                return compiled(tok, pos, length)

            return run

        step = self.bucketed(run_of_length)
        for t in step.inputs:
            dynamo.mark_static_address(t)
        return step

    def decode_step(self, mode):
        if mode == "eager":
            return self.eager_step()
        if mode == "compile":
            return self.compile_step()
        return self.graph_step(streams=mode == "graph-streams")


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


def grad_off(mode):
    """compile runs under no_grad (torch.compile's usual setting); the rest under inference_mode."""
    return torch.no_grad() if mode == "compile" else torch.inference_mode()


def release(device, mode):
    if mode == "compile":
        import torch._dynamo as dynamo  # (`import torch._dynamo` would make torch a local name)
        dynamo.reset()  # compiled code and cudagraph trees' memory
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def bench_preset(cfg, args, device, dtype, errors):
    print(f"torch_llama: building {cfg.name} ({cfg.layers} layers)", file=sys.stderr)
    model = Llama(cfg, device, dtype, args.seed, args.bucket)
    label = f"{cfg.name} {'f16' if dtype == torch.float16 else 'f32'}"
    prompt, generated, rows = bench_tokens(args.n_prompt), bench_tokens(args.n_gen), []

    def generate(step):
        for i, token in enumerate(generated):
            step(token, i)
            sync(device)  # each step synchronized, like braid bench's eval

    def add(mode, test, tps):
        rows.append({"model": label, "mode": mode, "test": test, "tps": statistics.median(tps), "tps_runs": tps})
        print(f"torch_llama: {label} {mode} {test}: {rows[-1]['tps']:.2f} t/s", file=sys.stderr)

    if args.n_prompt > 0:
        with torch.inference_mode():
            tps = time_test(model, lambda: model.prompt(prompt), args.n_prompt, args.repetitions)
        add("eager", f"pp{args.n_prompt}", tps)
    for mode in args.modes if args.n_gen > 0 else []:
        # A mode that fails (a compile error, say) is reported and skipped: the other rows stand.
        try:
            with grad_off(mode):
                step = model.decode_step(mode)
                tps = time_test(model, lambda: generate(step), args.n_gen, args.repetitions)
            add(mode, f"tg{args.n_gen}", tps)
        except Exception as e:  # noqa: BLE001 -- reported in the JSON and on stderr
            traceback.print_exc()
            errors.append({"model": label, "mode": mode, "test": f"tg{args.n_gen}", "error": f"{type(e).__name__}: {e}"})
            print(f"torch_llama: {label} {mode} tg{args.n_gen} FAILED: {errors[-1]['error']}", file=sys.stderr)
        step = None  # and with it the graphs and their memory pools
        release(device, mode)
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


# ---------------------------------------------------------------------------- --check


def check_decode_matches_prompt(cfg, device, dtype, n, tolerance):
    """The logits after a prompt of n tokens equal those of a prompt of n-2 tokens followed by
    an eager step and a static step (the graph modes' function, run eagerly)."""
    model = Llama(cfg, device, dtype, seed=1, bucket=4)
    tokens = bench_tokens(n)
    with torch.inference_mode():
        expected = model.prompt(tokens).float()
        model.reset()
        model.prompt(tokens[: n - 2])
        model.eager_step()(tokens[n - 2], n - 2)
        tok, pos = torch.tensor([tokens[n - 1]], device=device), torch.tensor([n - 1], device=device)
        static = model.forward(tok, pos, length=model.attended(n - 1)).float()
    err = (static - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    ok = bool(torch.isfinite(static).all()) and err <= tolerance * scale
    print(f"check {cfg.name} {str(dtype)[6:]}: prompt {n - 2} + eager step + static step vs prompt {n}: "
          f"max |logit difference| {err:.2e} (limit {tolerance * scale:.1e}) {'ok' if ok else 'FAILED'}")
    return ok


def check_modes(cfg, device, dtype, modes, steps, bucket, tolerance):
    """Every mode's logits equal eager's at every step of a generation from an empty cache;
    with `bucket` small, the steps cross bucket boundaries (new graphs, recompiles)."""
    model = Llama(cfg, device, dtype, seed=1, bucket=bucket)
    tokens = bench_tokens(steps)

    def run(mode):
        model.reset()
        out = []
        with grad_off(mode):
            step = model.decode_step(mode)
            for i, t in enumerate(tokens):
                out.append(step(t, i).float().clone())  # clone: a graph's output is reused by the next step
        release(device, mode)
        return out

    reference = run("eager")
    lengths = sorted({model.attended(i) for i in range(steps)})
    ok = True
    for mode in modes:
        if mode == "eager":
            continue
        try:
            got = run(mode)
        except Exception as e:  # noqa: BLE001 -- a check reports every mode
            traceback.print_exc()
            print(f"check {cfg.name} {str(dtype)[6:]} {mode}: FAILED to run: {type(e).__name__}: {e}")
            ok = False
            continue
        errs = [(g - r).abs().max().item() / max(1.0, r.abs().max().item()) for g, r in zip(got, reference)]
        worst = max(range(steps), key=lambda i: errs[i])
        good = all(math.isfinite(e) and e <= tolerance for e in errs)
        ok &= good
        print(f"check {cfg.name} {str(dtype)[6:]} {mode}: {steps} steps (attended lengths {lengths}), "
              f"max relative |logit difference| {errs[worst]:.2e} at step {worst} (limit {tolerance:.0e}) "
              f"{'ok' if good else 'FAILED'}")
    return ok


def run_checks(args, device):
    """--check: small models, every mode against eager, in f32 and f16 on the CPU, f16 on a GPU."""
    torch.manual_seed(0)
    dtypes = [torch.float32, torch.float16] if device.type == "cpu" else [torch.float16]
    tolerances = {torch.float32: 1e-4, torch.float16: 2e-2}
    models = [preset_config("tiny-256", layers=2), config("tiny-moe-gqa", 256, 512, 8, 2, 2, 4, 2)]
    if device.type == "cuda":  # the real shapes, 2 layers each (grouped-query attention, 8 experts)
        models += [preset_config("llama-1b", layers=2), preset_config("moe-8x1b", layers=2)]
    else:
        models.insert(1, config("tiny-gqa", 256, 512, 8, 2, 2))
    ok = True
    for dtype in dtypes:
        for cfg in models:
            ok &= check_decode_matches_prompt(cfg, device, dtype, 16, tolerances[dtype])
            ok &= check_modes(cfg, device, dtype, args.modes, args.check_steps, args.check_bucket,
                              tolerances[dtype])
    return ok


def dry_run(args):
    """No GPU needed: --check on the CPU, then the bench loop (prompt and every mode) on
    tiny-256 with 2 layers."""
    if not run_checks(args, torch.device("cpu")):
        sys.exit("dry-run: a decode mode disagrees with eager")
    args.n_gen, args.repetitions = 2, 1
    args.n_prompt = min(args.n_prompt, 64)
    errors = []
    rows = bench_preset(preset_config("tiny-256", layers=2), args, torch.device("cpu"), torch.float32, errors)
    return rows, errors


def markdown(rows, errors):
    lines = ["| model | mode | test | t/s |", "| --- | --- | --- | ---: |"]
    lines += [f"| {r['model']} | {r['mode']} | {r['test']} | {r['tps']:.2f} |" for r in rows]
    lines += [f"| {e['model']} | {e['mode']} | {e['test']} | failed: {e['error'][:120]} |" for e in errors]
    return "\n".join(lines)


def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_llama: no CUDA device (use --device cpu --check, or --dry-run, for the CPU check)")
    return torch.device(name)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", action="append", choices=list(PRESETS), help="repeatable (default llama-1b)")
    p.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt length, 0 to skip (default 512)")
    p.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens, 0 to skip (default 128)")
    p.add_argument("-r", "--repetitions", type=int, default=3, help="timed repetitions (default 3)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated: {', '.join(MODES)}")
    p.add_argument("--layers", type=int, help="override the presets' layer count")
    p.add_argument("--seed", type=int, default=1, help="seed of the random weights")
    p.add_argument("--bucket", type=int, default=BUCKET,
                   help=f"static steps attend over the position + 1 rounded up to this many slots (default {BUCKET})")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON ('-' for stdout)")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                   help="where --check runs (default: cuda when there is one); the benchmark needs cuda")
    p.add_argument("--check", action="store_true",
                   help="compare every mode's logits with eager's, step by step, on small models, and exit")
    p.add_argument("--check-steps", type=int, default=10, help="decode steps of --check (default 10)")
    p.add_argument("--check-bucket", type=int, default=4, help="bucket of --check (default 4: lengths 4, 8, 12)")
    p.add_argument("--dry-run", action="store_true",
                   help="CPU: --check, then the bench loop on tiny-256 with 2 layers, f32")
    args = p.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in args.modes):
        p.error(f"unknown mode in '{','.join(args.modes)}' (known: {', '.join(MODES)})")
    if args.repetitions < 1 or args.n_prompt < 0 or args.n_gen < 0:
        p.error("-r must be positive, -p and -n not negative")
    if max(args.n_prompt, args.n_gen) > N_CTX:
        p.error(f"tests must fit the context of {N_CTX}")
    if not 1 <= args.bucket <= N_CTX or not 1 <= args.check_bucket <= N_CTX:
        p.error(f"--bucket and --check-bucket must be in 1..{N_CTX}")
    if not 2 <= args.check_steps <= N_CTX:
        p.error(f"--check-steps must be in 2..{N_CTX}")

    device = torch.device("cpu") if args.dry_run else pick_device(args.device if args.check else "cuda")
    if device.type == "cpu":  # the expert kernels run in Triton's interpreter; set before importing triton
        os.environ.setdefault("TRITON_INTERPRET", "1")
    if args.check:
        ok = run_checks(args, device)
        print("check: every mode agrees with eager" if ok else "check: FAILED")
        sys.exit(0 if ok else 1)

    errors = []
    if args.dry_run:
        device_name = "cpu (dry run)"
        rows, errors = dry_run(args)
    else:
        device_name = torch.cuda.get_device_name()
        rows = []
        for name in args.preset or ["llama-1b"]:
            rows += bench_preset(preset_config(name, args.layers), args, device, torch.float16, errors)

    print(f"device: {device_name}, torch {torch.__version__}\n")
    print(markdown(rows, errors))
    if args.json:
        result = {"device": device_name, "torch": torch.__version__, "rows": rows}
        if errors:
            result["errors"] = errors
        text = json.dumps(result, indent=2)
        with open(1 if args.json == "-" else args.json, "w", closefd=args.json != "-") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
