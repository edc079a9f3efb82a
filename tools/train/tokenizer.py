#!/usr/bin/env python3
"""Train the demo models' byte-level BPE tokenizer (HF `tokenizers`) on the corpus train split.

What: GPT-2 style byte-level BPE (ByteLevel pre-tokenizer with its split regex, ByteLevel decoder,
all 256 byte symbols in the base alphabet so any input encodes), 8192 ids, one special token
`<|endoftext|>` = id 0 used as bos, eos and pad. Writes tools/train/tokenizer.json.
Why: small vocab keeps the embedding share of a ~13M-parameter model low; byte-level means no
unknown tokens for C/Go/Python code; the stree engine's tokenizer loads exactly this format.

Deterministic: same corpus + same `tokenizers` version -> the same file (checked by training twice).
Usage:  python3 tools/train/tokenizer.py [--corpus .corpus] [--out tools/train/tokenizer.json]
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

EOT = "<|endoftext|>"


def docs(corpus: str, max_bytes: int):
    for dom in ("code", "prose"):
        text = lzma.open(os.path.join(corpus, f"train-{dom}.txt.xz"), "rt", encoding="utf-8").read()
        text = text[:max_bytes]  # deterministic prefix (documents are in hash order)
        yield from text.split(EOT)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(here, "..", "..", ".corpus"))
    ap.add_argument("--out", default=os.path.join(here, "tokenizer.json"))
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--max-bytes", type=int, default=40_000_000, help="per domain")
    args = ap.parse_args()

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=args.vocab, min_frequency=2, special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs(args.corpus, args.max_bytes), trainer=trainer)
    assert tok.token_to_id(EOT) == 0 and tok.get_vocab_size() == args.vocab, tok.get_vocab_size()
    tok.save(args.out)
    sample = "int main(void) {\n\treturn 0;\n}\n" + EOT + "The quick brown fox."
    ids = tok.encode(sample).ids
    assert tok.decode(ids, skip_special_tokens=False) == sample
    print(f"tokenizer: {tok.get_vocab_size()} ids -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
