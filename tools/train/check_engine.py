#!/usr/bin/env python3
"""Check that the stree engine reproduces transformers on trained demo checkpoints.

What: for each model folder, runs transformers on CPU in float32 (bf16 weights upcast, eager
attention, full re-forwards) and `stree logits` on a held-out prompt, and reports the max logit
error relative to the max |logit| (must be <= --tol, 1e-4); checks that `stree generate --greedy`
gives transformers' greedy continuation; with --draft, also runs tree-speculative generation
(target + draft, a static tree and a dynamic tree) and checks the output equals plain greedy.
Why: the shipped models are only useful if the engine computes exactly what they were trained as.

Usage:  python3 tools/train/check_engine.py --stree build/stree --model models/demo-target \
            [--model models/demo-draft] [--draft models/demo-draft --target models/demo-target] \
            [--prompts bench/workloads/heldout-code.jsonl] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import transformers

torch.set_num_threads(max(1, os.cpu_count() or 1))


def load(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    cls = getattr(transformers, cfg["architectures"][0])
    m = cls.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


@torch.no_grad()
def hf_logits(m, ids):
    return m(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float().numpy()


@torch.no_grad()
def hf_greedy(m, ids, n):
    seq, out = list(ids), []
    for _ in range(n):
        nxt = int(m(input_ids=torch.tensor([seq]), use_cache=False).logits[0, -1].argmax())
        out.append(nxt)
        seq.append(nxt)
    return out


def stree(args, *cmd):
    r = subprocess.run([args.stree, *cmd], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"check_engine: {' '.join([args.stree, *cmd])} failed:\n{r.stderr}")
    return r


def gen(args, model, ids, n, extra=()):
    r = stree(args, "generate", "--model", model, "--tokens", ",".join(map(str, ids)), "--max-new", str(n),
              "--greedy", "--ids", "--no-eos", "--json", *extra)
    stats = None
    for line in r.stderr.splitlines():
        if line.startswith("{"):
            try:
                stats = json.loads(line)
            except ValueError:
                pass
    return [int(t) for t in r.stdout.split()], stats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stree", default="build/stree")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--target")
    ap.add_argument("--draft")
    ap.add_argument("--prompts", action="append", default=[])
    ap.add_argument("--n-prompts", type=int, default=2, help="per prompts file")
    ap.add_argument("--max-new", type=int, default=16)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--json")
    args = ap.parse_args()
    prompts = []
    for f in args.prompts:
        lines = [json.loads(l) for l in open(f) if l.strip()]
        prompts += [l["tokens"] for l in lines[:args.n_prompts]]
    if not prompts:
        prompts = [[0, 1, 2, 3, 4, 5, 6, 7]]
    report, ok = {"models": {}, "spec": []}, True
    models = {}
    for d in args.model:
        m = models[d] = load(d)
        rows = []
        for ids in prompts:
            ref = hf_logits(m, ids)
            with tempfile.NamedTemporaryFile(suffix=".f32") as f:
                stree(args, "logits", "--model", d, "--tokens", ",".join(map(str, ids)), "--out", f.name)
                got = np.fromfile(f.name, dtype="<f4").reshape(ref.shape)
            rel = float(np.abs(got - ref).max() / np.abs(ref).max())
            g_hf = hf_greedy(m, ids, args.max_new)
            g_st, _ = gen(args, d, ids, args.max_new)
            rows.append(dict(prompt_len=len(ids), rel_err=rel, max_abs_logit=float(np.abs(ref).max()),
                             greedy_equal=g_hf == g_st))
            ok &= rel <= args.tol and g_hf == g_st
            print(f"{d}: {len(ids)} tokens, logits rel err {rel:.2e}, greedy {args.max_new} "
                  f"{'equal' if g_hf == g_st else 'DIFFERENT'}")
        report["models"][d] = rows
    if args.draft and args.target:
        for ids in prompts:
            ar, _ = gen(args, args.target, ids, args.max_new)
            for shape in (["--chain", "4"], ["--dynamic", "4,5,24"]):
                sp, st = gen(args, args.target, ids, args.max_new, ["--draft", args.draft, *shape])
                e = dict(prompt_len=len(ids), shape=" ".join(shape), equal=sp == ar, stats=st)
                report["spec"].append(e)
                ok &= sp == ar
                acc = st.get("mean_accepted") if isinstance(st, dict) else None
                print(f"spec {' '.join(shape)}: {'equal to greedy' if sp == ar else 'DIFFERENT'}"
                      f"{'' if st is None else ', stats ' + json.dumps(st)}")
    report["ok"] = bool(ok)
    if args.json:
        json.dump(report, open(args.json, "w"), indent=1)
    print("check_engine:", "OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
