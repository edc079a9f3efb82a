#!/usr/bin/env python3
"""Train one of the two demo models (hybrid target or small draft) for a wall-clock budget.

What: builds a fresh HF model from a config object (never downloads anything),
  --arch target: GraniteMoeHybridForCausalLM, dense (num_local_experts 0), Mamba-2 layers
                 ("linear_attention") with two attention layers (NoPE), ~13M params, tied embeddings
  --arch draft:  LlamaForCausalLM, ~2.4M params, tied embeddings, same 8192-id tokenizer
trains it on tools/train/prep.py's token stream (random 512-token windows, bf16 autocast, AdamW,
linear warm-up then cosine decay over the time budget), then saves bf16 safetensors in shards
<= 15 MB with config.json, generation_config.json and tokenizer.json, reloads the saved folder in
float32 (the way the stree engine upcasts) and reports validation loss / perplexity / bits per
byte on the code and prose validation splits to OUT/metrics.json.

Why a patched Mamba-2 scan: without mamba_ssm, transformers' GraniteMoeHybrid runs a pure-torch
chunked scan that materializes [batch, chunks, L, L, heads, head_dim] broadcasts (tens of GB per
layer at batch 64). `ssd_chunk_scan` below computes the same SSD math with batched matmuls; it is
used only while training (and checked against the transformers function, values and gradients, by
`--check-scan`). The saved checkpoints are plain HF format and load without this file.
Why no torch.compile by default: compile time of the HF model (minutes, with graph breaks) would
eat a large share of a 7-minute budget and cannot be tried before the one GPU run; `--compile` is
there for later experiments.

Usage:  python3 tools/train/train.py --arch target --data .train/tok --out .train/target \
            --time-budget 420 [--batch 64 --seq 512 --lr 2e-3] [--tiny --max-steps 20 --device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import transformers
from transformers.models.granitemoehybrid import modeling_granitemoehybrid as gmh

VOCAB = 8192
EOS = 0

# ~13.0M parameters (2.6M of them the tied 8192 x 320 embedding) -> ~26 MB (24.8 MiB) in bf16
TARGET = dict(
    hidden_size=320, intermediate_size=768, shared_intermediate_size=768,
    num_hidden_layers=8,
    layer_types=["linear_attention", "linear_attention", "linear_attention", "full_attention",
                 "linear_attention", "linear_attention", "linear_attention", "full_attention"],
    num_attention_heads=10, num_key_value_heads=2,  # head_dim 32
    mamba_n_heads=10, mamba_d_head=64, mamba_d_state=64, mamba_n_groups=1, mamba_expand=2,
    mamba_d_conv=4, mamba_chunk_size=128, mamba_conv_bias=True, mamba_proj_bias=False,
    position_embedding_type="nope",
)
# ~2.4M parameters (1.6M of them the tied 8192 x 192 embedding) -> ~4.8 MB in bf16
DRAFT = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=2, num_attention_heads=6,
             num_key_value_heads=2, head_dim=32)
TINY_TARGET = dict(
    hidden_size=64, intermediate_size=96, shared_intermediate_size=96, num_hidden_layers=4,
    layer_types=["linear_attention", "linear_attention", "full_attention", "linear_attention"],
    num_attention_heads=4, num_key_value_heads=2, mamba_n_heads=8, mamba_d_head=16, mamba_d_state=16,
    mamba_n_groups=1, mamba_expand=2, mamba_d_conv=4, mamba_chunk_size=32, mamba_conv_bias=True,
    mamba_proj_bias=False, position_embedding_type="nope")
TINY_DRAFT = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=12)


def log(*a):
    print(f"[train {time.strftime('%H:%M:%S')}]", *a, flush=True)


# ---------------------------------------------------------------------------------------------
# Mamba-2 SSD chunk scan with matmuls (same signature and math as gmh.mamba2_chunk_scan)
# ---------------------------------------------------------------------------------------------

def ssd_chunk_scan(hidden_states, *args, **kwargs):
    # fp32 (TF32 on GPU) like transformers' reference, also under bf16 autocast
    with torch.autocast(hidden_states.device.type, enabled=False):
        return _ssd_chunk_scan(hidden_states, *args, **kwargs)


def _ssd_chunk_scan(hidden_states, dt, A, B, C, chunk_size, D=None, dt_bias=None, initial_states=None,
                    dt_softplus=False, dt_limit=(0.0, float("inf")), return_final_states=False, z=None,
                    **kwargs):
    bsz, T, h, p = hidden_states.shape
    g, n = B.shape[2], B.shape[3]
    if dt_bias is not None:
        dt = dt + dt_bias.to(dt.dtype)
    if dt_softplus:
        dt = F.softplus(dt)
    dt = torch.clamp(dt, min=dt_limit[0], max=dt_limit[1]).float()
    x = hidden_states.float()
    B = B.float().repeat_interleave(h // g, dim=2)
    C = C.float().repeat_interleave(h // g, dim=2)
    pad = (chunk_size - T % chunk_size) % chunk_size
    if pad:
        x, dt, B, C = [F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C)]
    c, l = (T + pad) // chunk_size, chunk_size
    xdt = (x * dt[..., None]).view(bsz, c, l, h, p)
    Adt = (A.float() * dt).view(bsz, c, l, h).permute(0, 3, 1, 2)  # [b,h,c,l]
    Bc, Cc = B.view(bsz, c, l, h, n), C.view(bsz, c, l, h, n)
    Acs = torch.cumsum(Adt, dim=-1)
    Lm = torch.exp(gmh.segment_sum(Adt))  # [b,h,c,l,s]
    # intra-chunk: Y[l] = sum_s (C_l . B_s) L[l,s] xdt_s
    CB = torch.einsum("bclhn,bcshn->bhcls", Cc, Bc)
    Y = torch.einsum("bhcls,bcshp->bclhp", CB * Lm, xdt)
    # chunk states, inter-chunk recurrence, state -> output
    decay_states = torch.exp(Acs[..., -1:] - Acs)  # [b,h,c,l]
    states = torch.einsum("bclhn,bhcl,bclhp->bchpn", Bc, decay_states, xdt)
    if initial_states is None:
        init = torch.zeros_like(states[:, :1])
    else:
        init = initial_states[:, None].to(states)
    states = torch.cat([init, states], dim=1)
    decay_chunk = torch.exp(gmh.segment_sum(F.pad(Acs[..., -1], (1, 0))))  # [b,h,c+1,c+1]
    new_states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final_state = new_states[:, :-1], new_states[:, -1]
    Y = Y + torch.einsum("bclhn,bchpn,bhcl->bclhp", Cc, states, torch.exp(Acs))
    Y = Y.reshape(bsz, c * l, h, p)
    if D is not None:
        Y = Y + D[:, None].float() * x
    Y = Y[:, :T]
    if z is not None:
        Y = Y * F.silu(z.view_as(Y).float())
    out = Y.to(hidden_states.dtype)
    return (out, final_state) if return_final_states else out


def check_scan():
    """ssd_chunk_scan == transformers' mamba2_chunk_scan (values and gradients), on CPU."""
    torch.manual_seed(0)
    ref_fn = gmh.mamba2_chunk_scan
    for T, chunk, g in ((37, 16, 1), (64, 32, 2), (5, 8, 1)):
        b, h, p, n = 2, 4, 8, 6
        args = [torch.randn(b, T, h, p), torch.randn(b, T, h) * 0.5 - 1.0, -torch.rand(h) * 4 - 0.5,
                torch.randn(b, T, g, n), torch.randn(b, T, g, n)]
        D, dtb = torch.randn(h), torch.randn(h) * 0.3
        outs = []
        for fn in (ref_fn, ssd_chunk_scan):
            leaves = [a.clone().requires_grad_() for a in args]
            y, fs = fn(*leaves, chunk_size=chunk, D=D, dt_bias=dtb, dt_softplus=True, return_final_states=True)
            (y.square().sum() + fs.sum()).backward()
            outs.append([y.detach(), fs.detach()] + [a.grad for a in leaves])
        for u, v in zip(*outs):
            err = (u - v).abs().max() / (v.abs().max() + 1e-12)
            assert err < 1e-5, float(err)
    print("check-scan: ssd_chunk_scan matches transformers (values, final state, gradients) to < 1e-5")


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

def make_config(arch: str, tiny: bool):
    if arch == "target":
        d = dict(TINY_TARGET if tiny else TARGET)
        hd = d["hidden_size"] // d["num_attention_heads"]
        return transformers.GraniteMoeHybridConfig(
            vocab_size=VOCAB, num_local_experts=0, num_experts_per_tok=0, max_position_embeddings=4096,
            embedding_multiplier=1.0, residual_multiplier=1.0, logits_scaling=1.0,
            attention_multiplier=1.0 / math.sqrt(hd), rms_norm_eps=1e-5, hidden_act="silu",
            tie_word_embeddings=True, initializer_range=0.02, bos_token_id=EOS, eos_token_id=EOS,
            pad_token_id=EOS, use_cache=True, **d)
    d = dict(TINY_DRAFT if tiny else DRAFT)
    return transformers.LlamaConfig(
        vocab_size=VOCAB, max_position_embeddings=4096, rms_norm_eps=1e-5, hidden_act="silu",
        tie_word_embeddings=True, initializer_range=0.02, bos_token_id=EOS, eos_token_id=EOS,
        pad_token_id=EOS, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **d)


def build_model(arch: str, tiny: bool, seed: int, attn: str):
    torch.manual_seed(seed)
    cfg = make_config(arch, tiny)
    cfg._attn_implementation = attn
    cls = transformers.GraniteMoeHybridForCausalLM if arch == "target" else transformers.LlamaForCausalLM
    model = cls(cfg)
    g = torch.Generator().manual_seed(seed + 1)
    n_layers = cfg.num_hidden_layers
    with torch.no_grad():
        for name, prm in model.named_parameters():
            # GPT-2 style: residual-branch output projections scaled by 1/sqrt(2 * layers)
            if name.endswith(("o_proj.weight", "out_proj.weight", "down_proj.weight", "output_linear.weight")):
                prm.mul_(1.0 / math.sqrt(2 * n_layers))
            elif name.endswith("dt_bias"):  # Mamba-2 init: dt log-uniform in [1e-3, 1e-1]
                dt = torch.exp(torch.rand(prm.shape, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
                prm.copy_(dt + torch.log(-torch.expm1(-dt)))
            elif name.endswith("A_log"):  # A in [1, 16]
                prm.copy_(torch.log(1 + 15 * torch.rand(prm.shape, generator=g)))
    return model


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights counted once


# ---------------------------------------------------------------------------------------------
# data, eval
# ---------------------------------------------------------------------------------------------

def windows(stream: torch.Tensor, seq: int):
    n = (stream.numel() - 1) // seq
    x = stream[:n * seq].view(n, seq)
    y = stream[1:n * seq + 1].view(n, seq)
    return x, y


@torch.no_grad()
def evaluate(model, val: dict, seq: int, batch: int, device, max_tokens: int, autocast: bool):
    model.eval()
    res = {}
    for name, (stream, nbytes) in val.items():
        x, y = windows(stream, seq)
        keep = max(1, min(x.shape[0], max_tokens // seq))
        x, y = x[:keep], y[:keep]
        tot, cnt = 0.0, 0
        for i in range(0, x.shape[0], batch):
            xb, yb = x[i:i + batch].to(device).long(), y[i:i + batch].to(device).long()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=xb, use_cache=False).logits
            tot += float(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), yb.reshape(-1),
                                         reduction="sum"))
            cnt += yb.numel()
        loss = tot / cnt
        frac_bytes = nbytes * cnt / stream.numel()  # bytes covered by the evaluated tokens
        res[name] = dict(loss=loss, ppl=math.exp(loss), tokens=cnt, bits_per_byte=tot / math.log(2) / frac_bytes)
    model.train()
    return res


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--arch", choices=("target", "draft"))
    ap.add_argument("--data", help="prep.py output folder")
    ap.add_argument("--tokenizer", default=os.path.join(here, "tokenizer.json"))
    ap.add_argument("--out")
    ap.add_argument("--time-budget", type=float, default=420.0, help="seconds of training (then eval+save)")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=0.0, help="peak; default 1.5e-3 target, 3e-3 draft")
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=200, help="steps")
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--eval-tokens", type=int, default=1_000_000, help="per validation split")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny dims (CPU smoke test)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--check-scan", action="store_true", help="only verify ssd_chunk_scan and exit")
    args = ap.parse_args()
    if args.check_scan:
        check_scan()
        return
    if not (args.arch and args.data and args.out):
        ap.error("--arch, --data and --out are required")

    t_start = time.time()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    gmh.mamba2_chunk_scan = ssd_chunk_scan  # training-time speed only; see the header
    lr = args.lr or (1.5e-3 if args.arch == "target" else 3e-3)

    meta = json.load(open(os.path.join(args.data, "meta.json")))
    train = torch.from_numpy(np.load(os.path.join(args.data, "train.npy")).astype(np.int32))
    val = {dom: (torch.from_numpy(np.load(os.path.join(args.data, f"val-{dom}.npy")).astype(np.int32)),
                 meta["splits"][f"val-{dom}"]["bytes"]) for dom in ("code", "prose")}
    train_dev = train.to(device)
    log(f"{args.arch}: {train.numel()/1e6:.2f} M train tokens, val " +
        ", ".join(f"{k} {v[0].numel()/1e6:.2f} M" for k, v in val.items()))

    model = build_model(args.arch, args.tiny, args.seed, "sdpa").to(device)
    model.train()
    npar = n_params(model)
    emb = model.get_input_embeddings().weight.numel()
    log(f"{type(model).__name__}: {npar/1e6:.3f} M params ({emb/1e6:.3f} M tied embedding), "
        f"{2*npar/2**20:.2f} MiB bf16")

    decay, no_decay = [], []
    for name, prm in model.named_parameters():
        (decay if prm.dim() >= 2 and "embed" not in name else no_decay).append(prm)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=cuda)
    step_fn = model
    if args.compile:
        step_fn = torch.compile(model)

    gen = torch.Generator(device=device).manual_seed(args.seed)
    ar = torch.arange(args.seq + 1, device=device)
    hi = train_dev.numel() - args.seq - 1
    step, tokens, t0 = 0, 0, time.time()
    hist = []
    loss_acc, n_acc = 0.0, 0
    while True:
        el = time.time() - t0
        if (args.max_steps and step >= args.max_steps) or (not args.max_steps and el >= args.time_budget):
            break
        prog = min(1.0, step / args.max_steps) if args.max_steps else min(1.0, el / args.time_budget)
        cur_lr = lr * min(1.0, (step + 1) / args.warmup) * (
            args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))
        for gr in opt.param_groups:
            gr["lr"] = cur_lr
        idx = torch.randint(0, hi, (args.batch,), device=device, generator=gen)
        w = train_dev[idx[:, None] + ar].long()
        x, y = w[:, :-1], w[:, 1:]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = step_fn(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        if step % args.log_every == 0 or step == 1:
            lv = float(loss)
            el = time.time() - t0
            hist.append(dict(step=step, loss=lv, lr=cur_lr, tokens=tokens, elapsed=el))
            if not math.isfinite(lv):
                sys.exit("train: loss is not finite")
            log(f"step {step} loss {lv:.4f} gnorm {float(gn):.2f} lr {cur_lr:.2e} "
                f"{tokens/1e6:.1f} M tok {tokens/max(el,1e-9)/1e3:.0f} k tok/s {el:.0f} s")
    train_s = time.time() - t0
    log(f"trained {step} steps, {tokens/1e6:.1f} M tokens ({tokens/train.numel():.2f} epochs) in {train_s:.0f} s")

    # save bf16 shards + tokenizer, then evaluate the saved folder the way the engine reads it
    os.makedirs(args.out, exist_ok=True)
    model.generation_config = transformers.GenerationConfig(bos_token_id=EOS, eos_token_id=EOS, pad_token_id=EOS)
    model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.save_pretrained(args.out, max_shard_size="15MB")
    shutil.copyfile(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    del model, opt
    cls = transformers.GraniteMoeHybridForCausalLM if args.arch == "target" else transformers.LlamaForCausalLM
    saved = cls.from_pretrained(args.out, dtype=torch.float32, attn_implementation="sdpa").to(device)
    metrics = evaluate(saved, val, args.seq, max(1, args.batch // 2), device, args.eval_tokens, autocast=False)
    for k, v in metrics.items():
        log(f"val {k}: loss {v['loss']:.4f} ppl {v['ppl']:.2f} bpb {v['bits_per_byte']:.3f} ({v['tokens']} tokens)")
    files = sorted(os.listdir(args.out))
    out = dict(arch=args.arch, model_class=cls.__name__, params=npar, tied_embedding_params=emb,
               bf16_bytes=sum(os.path.getsize(os.path.join(args.out, f)) for f in files if f.endswith(".safetensors")),
               files=files, steps=step, train_tokens_seen=tokens, epochs=tokens / train.numel(),
               train_seconds=train_s, total_seconds=time.time() - t_start, batch=args.batch, seq=args.seq,
               peak_lr=lr, warmup=args.warmup, weight_decay=args.wd, device=str(device),
               gpu=torch.cuda.get_device_name(0) if cuda else None, torch=torch.__version__,
               transformers=transformers.__version__, val=metrics, history=hist, tiny=args.tiny,
               train_tokens=int(train.numel()))
    json.dump(out, open(os.path.join(args.out, "metrics.json"), "w"), indent=1)
    log(f"saved {args.out}: {', '.join(files)} ({time.time()-t_start:.0f} s total)")


if __name__ == "__main__":
    main()
