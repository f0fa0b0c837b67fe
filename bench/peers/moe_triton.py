"""Mixtral's routed experts for one decode token, reading the experts' weights in place.

A static decode step (CUDA graph, torch.compile) keeps the routing on the device, so it cannot
index the stacked expert weights with a host integer; torch's indexing by a device tensor
(index_select, w[ids]) copies the selected experts' matrices first. These two Triton kernels
read the expert id from device memory and compute the matrix-vector products straight from the
stacked (n_expert, rows, cols) weights: a plain split-into-row-blocks GEMV with f32
accumulation, one launch for every selected slot. Imported lazily by torch_llama.py; on the CPU
its self-test runs them under TRITON_INTERPRET=1 (set before this module is imported).
"""
import torch
import triton
import triton.language as tl

BLOCK_ROWS, BLOCK_COLS = 8, 256


@triton.jit
def _expert_rows(ids_ptr, n_rows, n_cols, BLOCK_ROWS: tl.constexpr):
    """This program's slot (grid axis 1), its block of rows (axis 0), which of them exist, and
    their offsets into the stacked weights of the slot's expert, read from ids on the device."""
    block, slot = tl.program_id(0), tl.program_id(1)
    expert = tl.load(ids_ptr + slot).to(tl.int64)
    rows = block * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_ok = rows < n_rows
    return slot, rows, row_ok, expert * n_rows * n_cols + rows.to(tl.int64)[:, None] * n_cols


@triton.jit
def _gate_up_kernel(x_ptr, ids_ptr, gate_ptr, up_ptr, out_ptr, n_rows, n_cols,
                    BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    """out[s, r] = silu(gate[e] @ x)[r] * (up[e] @ x)[r] with e = ids[s]; grid (row blocks, slots)."""
    slot, rows, row_ok, base = _expert_rows(ids_ptr, n_rows, n_cols, BLOCK_ROWS)
    acc_gate = tl.zeros((BLOCK_ROWS, BLOCK_COLS), dtype=tl.float32)
    acc_up = tl.zeros((BLOCK_ROWS, BLOCK_COLS), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_COLS):
        cols = start + tl.arange(0, BLOCK_COLS)
        col_ok = cols < n_cols
        x = tl.load(x_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        ok = row_ok[:, None] & col_ok[None, :]
        acc_gate += tl.load(gate_ptr + base + cols[None, :], mask=ok, other=0.0).to(tl.float32) * x
        acc_up += tl.load(up_ptr + base + cols[None, :], mask=ok, other=0.0).to(tl.float32) * x
    g = tl.sum(acc_gate, axis=1)
    u = tl.sum(acc_up, axis=1)
    y = g * tl.sigmoid(g) * u
    tl.store(out_ptr + slot * n_rows + rows, y.to(out_ptr.dtype.element_ty), mask=row_ok)


@triton.jit
def _down_kernel(act_ptr, ids_ptr, down_ptr, out_ptr, n_rows, n_cols,
                 BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    """out[s, r] = (down[e] @ act[s])[r] in f32 with e = ids[s]; grid (row blocks, slots)."""
    slot, rows, row_ok, base = _expert_rows(ids_ptr, n_rows, n_cols, BLOCK_ROWS)
    acc = tl.zeros((BLOCK_ROWS, BLOCK_COLS), dtype=tl.float32)
    for start in range(0, n_cols, BLOCK_COLS):
        cols = start + tl.arange(0, BLOCK_COLS)
        col_ok = cols < n_cols
        a = tl.load(act_ptr + slot * n_cols + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        ok = row_ok[:, None] & col_ok[None, :]
        acc += tl.load(down_ptr + base + cols[None, :], mask=ok, other=0.0).to(tl.float32) * a
    tl.store(out_ptr + slot * n_rows + rows, tl.sum(acc, axis=1), mask=row_ok)


def routed_experts(x, ids, gate_exps, up_exps, down_exps):
    """x: (n_embd,) one token's normed activation; ids: (used,) int64 expert ids on the device;
    *_exps: contiguous stacked weights, gate/up (n_expert, n_ff, n_embd), down (n_expert, n_embd,
    n_ff). Returns (used, n_embd) f32: each slot's expert output, before the routing weights.
    Allocates only fixed-shape outputs and never reads a device value on the host, so it can be
    captured in a CUDA graph."""
    used, (n_ff, n_embd) = ids.shape[0], gate_exps.shape[1:]
    assert x.is_contiguous() and ids.is_contiguous()
    assert gate_exps.is_contiguous() and up_exps.is_contiguous() and down_exps.is_contiguous()
    act = torch.empty((used, n_ff), device=x.device, dtype=x.dtype)
    _gate_up_kernel[(triton.cdiv(n_ff, BLOCK_ROWS), used)](
        x, ids, gate_exps, up_exps, act, n_ff, n_embd, BLOCK_ROWS=BLOCK_ROWS, BLOCK_COLS=BLOCK_COLS)
    out = torch.empty((used, n_embd), device=x.device, dtype=torch.float32)
    _down_kernel[(triton.cdiv(n_embd, BLOCK_ROWS), used)](
        act, ids, down_exps, out, n_embd, n_ff, BLOCK_ROWS=BLOCK_ROWS, BLOCK_COLS=BLOCK_COLS)
    return out
