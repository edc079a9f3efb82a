#!/usr/bin/env python3
"""Write held-out prompts (token ids) for `stree bench` from the corpus held-out split.

What: for each domain (code, prose), takes N documents of CORPUS/heldout-DOMAIN.txt.xz spread
evenly over the sources (files never used for training or validation), starts each prompt at the
first line that begins after a quarter of the file (past licence headers and titles), and keeps
LEN tokens of the final tokenizer. Writes bench/workloads/heldout-DOMAIN.jsonl, one line each:
    {"tokens": [...], "max_new": 64, "source": "go:net/http/server.go"}
(`stree bench` reads "tokens" and "max_new" and ignores the provenance key.)
Why: a fixed, committed workload measures acceptance on text the draft and target never saw.

Usage:  python3 tools/train/prompts.py [--corpus .corpus] [--n 16] [--len 96]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os

from tokenizers import Tokenizer

from corpus import SOURCES  # the order in which corpus.py wrote the documents

EOT = "<|endoftext|>"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(root, ".corpus"))
    ap.add_argument("--tokenizer", default=os.path.join(here, "tokenizer.json"))
    ap.add_argument("--out", default=os.path.join(root, "bench", "workloads"))
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--len", type=int, default=96)
    ap.add_argument("--max-new", type=int, default=64)
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    man = json.load(open(os.path.join(args.corpus, "corpus-manifest.json")))
    os.makedirs(args.out, exist_ok=True)
    for dom in ("code", "prose"):
        docs = lzma.open(os.path.join(args.corpus, f"heldout-{dom}.txt.xz"), "rt", encoding="utf-8").read().split(EOT)
        names = [f"{s}:{p}" for s, (d, _) in SOURCES.items() if d == dom
                 for p in man["heldout_files"].get(s, [])]
        assert len(names) == len(docs), (len(names), len(docs))
        by_src = {}
        for name, text in zip(names, docs):
            by_src.setdefault(name.split(":", 1)[0], []).append((name, text))
        # round-robin over sources so every source contributes
        order, i = [], 0
        while any(i < len(v) for v in by_src.values()):
            order += [v[i] for v in by_src.values() if i < len(v)]
            i += 1
        lines = []
        for name, text in order:
            start = text.find("\n", len(text) // 4) + 1
            ids = tok.encode(text[start:], add_special_tokens=False).ids
            if start <= 0 or len(ids) < args.len + args.max_new:
                continue
            lines.append(dict(tokens=ids[:args.len], max_new=args.max_new, source=name))
            if len(lines) == args.n:
                break
        assert len(lines) == args.n, f"only {len(lines)} {dom} prompts"
        path = os.path.join(args.out, f"heldout-{dom}.jsonl")
        with open(path, "w") as f:
            for l in lines:
                f.write(json.dumps(l, separators=(", ", ": ")) + "\n")
        print(f"prompts: {path}: {len(lines)} prompts of {args.len} tokens")


if __name__ == "__main__":
    main()
