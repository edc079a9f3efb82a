#!/usr/bin/env python3
"""Tokenize the xz corpus splits into uint16 token streams for tools/train/train.py.

What: reads CORPUS/{train,val}-{code,prose}.txt.xz (documents separated by <|endoftext|>), encodes
every document with tools/train/tokenizer.json (HF tokenizers, batch encode on all cores) and writes
OUT/train.npy (code and prose documents, each preceded by <|endoftext|> = id 0, in one stream) and
OUT/val-code.npy, OUT/val-prose.npy, plus OUT/meta.json (token and byte counts per split).
Why: run once before the two training processes, so they share the work and start at once; the text
carries smaller than token ids (xz), so tokenizing happens on the training machine.

Usage:  python3 tools/train/prep.py --corpus .corpus --out .train/tok [--max-bytes N] [--threads 16]
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import sys
import time

import numpy as np


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(here, "..", "..", ".corpus"))
    ap.add_argument("--tokenizer", default=os.path.join(here, "tokenizer.json"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-bytes", type=int, default=0, help="per split: a deterministic prefix (smoke tests)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    from tokenizers import Tokenizer

    t0 = time.time()
    tok = Tokenizer.from_file(args.tokenizer)
    eot = "<|endoftext|>"
    eos = tok.token_to_id(eot)
    assert eos == 0 and tok.get_vocab_size() <= 65536
    os.makedirs(args.out, exist_ok=True)
    meta = {"tokenizer_vocab": tok.get_vocab_size(), "eos": eos, "splits": {}}
    train_parts = []
    for split in ("train", "val"):
        for dom in ("code", "prose"):
            text = lzma.open(os.path.join(args.corpus, f"{split}-{dom}.txt.xz"), "rt", encoding="utf-8").read()
            if args.max_bytes:
                text = text[:args.max_bytes]
            docs = text.split(eot)
            ids = tok.encode_batch_fast(docs, add_special_tokens=False) if hasattr(tok, "encode_batch_fast") \
                else tok.encode_batch(docs, add_special_tokens=False)
            lens = np.fromiter((len(e.ids) for e in ids), dtype=np.int64, count=len(ids))
            arr = np.empty(int(lens.sum()) + len(ids), dtype=np.uint16)
            pos = 0
            for e, n in zip(ids, lens):
                arr[pos] = eos
                arr[pos + 1:pos + 1 + n] = e.ids
                pos += 1 + n
            nbytes = sum(len(d.encode()) for d in docs)
            meta["splits"][f"{split}-{dom}"] = dict(docs=len(docs), tokens=int(arr.size), bytes=nbytes,
                                                   bytes_per_token=nbytes / max(1, arr.size - len(docs)))
            print(f"[prep] {split}-{dom}: {len(docs)} docs, {nbytes/1e6:.1f} MB -> {arr.size/1e6:.2f} M tokens "
                  f"({time.time()-t0:.1f} s)", file=sys.stderr, flush=True)
            if split == "train":
                train_parts.append(arr)
            else:
                np.save(os.path.join(args.out, f"val-{dom}.npy"), arr)
    np.save(os.path.join(args.out, "train.npy"), np.concatenate(train_parts))
    json.dump(meta, open(os.path.join(args.out, "meta.json"), "w"), indent=1)
    print(f"[prep] done in {time.time()-t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
