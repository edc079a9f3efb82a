#!/usr/bin/env python3
"""Builds the tokenizer fixtures of tests/test_tokenizer.c with the Hugging Face `tokenizers` library.

Offline and deterministic: GPT-2's tokenizer is assembled from /work/shared/data/gpt2-tokenizer
(encoder.json + vocab.bpe, MIT); the other tokenizers are trained on the markdown files of
/work/shared/reference (read only as training text; none of it is written to the fixtures except
through the trained vocabularies). Variants reuse a trained model under other pipelines
(normalizers, pre-tokenizers, decoders, added-token flags) so each component has goldens.

Writes tests/fixtures/tokenizers/<name>/{tokenizer.json,golden.json}. golden.json:
  {"vocab_size": len(get_vocab(with_added_tokens=True)), "token_ids": {token: id},
   "cases": [{"text", "input_hex" (the raw bytes the C side feeds; for strings made from invalid
              UTF-8 these are the invalid bytes and `text` is their errors='replace' decoding),
              "ids" (add_special_tokens=False), "ids_special" (True), "decoded_hex" = decode(ids)
              (absent: equal to text), "decoded_skip_hex" = decode(ids_special,
              skip_special_tokens=True) (absent: equal to decode(ids)), both as UTF-8 hex,
              "lossless" = decode(ids) == text, "normalized_hex" (only when it differs from text): the
              normalizer's output on the whole text, which byte-level tokenizers decode back to}],
   "decode_cases": [{"ids", "decoded_hex", "decoded_skip_hex"}] (seeded random id sequences)}

Usage: python3 tools/tokenizers/make_goldens.py [--out tests/fixtures/tokenizers]
"""
import argparse
import glob
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken, Regex

GPT2_DIR = "/work/shared/data/gpt2-tokenizer"
TRAIN_GLOB = "/work/shared/reference/*.md"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Strings: (text or raw bytes). Raw bytes hold invalid UTF-8; Python sees their 'replace' decoding.
CORPUS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "trailing spaces   ",
    "  double  spaces  inside  ",
    "\ttab\tseparated\tvalues",
    "tab\t\t\tend",
    "line1\nline2\r\nline3\rline4",
    "\n\n\n",
    "   ",
    " ",
    "",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00e0 la cr\u00e8me",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m",
    "\U0001F600 \U0001F44D\U0001F3FD \U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 \U0001F3F3\uFE0F\u200D\U0001F308",
    "I love \U0001F355 and \U0001F9D1\U0001F3FF\u200D\U0001F4BB!",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u4e2d\u6587\u5b57\u7b26",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "Hello\u4e16\u754c123\u0645\u0631\u062d\u0628\u0627 \u0928\u092e\u0938\u094d\u0924\u0947",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "1 12 123 1234 12345 123456 1234567890",
    "3.14159 2,718 -42 +7 1e10 0x1F",
    "\u0661\u0662\u0663 \u0967\u0968\u0969 \u2460\u2461 \u00bd",
    "it's they're we'VE I'LL he'd She'S you'm 'tis",
    "don't  won't can't",
    "def f(x):\n    return x**2  # square\n",
    "int main(void) {\n\treturn 0;\n}\n",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "if (a && b || !c) { x += 1; } // done",
    "https://example.com/path?q=1&r=two#frag",
    "hello<|end_of_text|>world",
    "<|begin_of_text|>Hi there<|end_of_text|>",
    "x<|endoftext|>y <|endoftext|> z",
    "<|endoftext|>",
    "<s>hello</s>",
    "a <s> b </s> c",
    "<unk><s></s>",
    "<|end_of_text|><|end_of_text|>",
    "not<|special",
    "ab" * 300,
    "the " * 150,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a\u00a0b\u2003c\u3000d\u2028e\u2029f",
    "x\u0085y\u180ez\u200bw",
    "x \u180eabc \u0085def \u2028ghi \u00a0jkl \u180e\u180e  mno",
    "nul\u0000byte\u0001\u001f\u007f",
    "\ufb01 ligature \u2460 \u210c \uff21\uff22\uff23 \u00b2",
    "\u0130stanbul \u0131 \u03a3\u0391\u03a3 stra\u00dfe \u01c5",
    "\U0001D400\U0001D401 \U00010348 \U0001F9EC",
    "\ufffd already replaced",
    b"abc\xff\xfedef",
    b"\xc3(",
    b"caf\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xed\xa0\x80 surrogate",
    b"\xc0\xaf overlong",
    b"\x80\x80x\xbf",
    b"ok \xf4\x90\x80\x80 too big",
]


def case_bytes(item):
    if isinstance(item, bytes):
        return item, item.decode("utf-8", errors="replace")
    return item.encode("utf-8"), item


def goldens(tok, cases):
    out = []
    for item in cases:
        raw, text = case_bytes(item)
        ids = tok.encode(text, add_special_tokens=False).ids
        ids_special = tok.encode(text, add_special_tokens=True).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        decoded_skip = tok.decode(ids_special, skip_special_tokens=True)
        normalized = tok.normalizer.normalize_str(text) if tok.normalizer else text
        entry = {"text": text, "input_hex": raw.hex(), "ids": ids, "ids_special": ids_special,
                 "lossless": decoded == text}
        # decodes are stored (as UTF-8 hex) only where they differ from the text / from decode(ids)
        if decoded != text or "\0" in text:
            entry["decoded_hex"] = decoded.encode("utf-8").hex()
        if decoded_skip != decoded:
            entry["decoded_skip_hex"] = decoded_skip.encode("utf-8").hex()
        if normalized != text:
            entry["normalized_hex"] = normalized.encode("utf-8").hex()
        out.append(entry)
    return out


def training_text():
    files = sorted(glob.glob(TRAIN_GLOB))
    if not files:
        sys.exit(f"no training text under {TRAIN_GLOB}")
    texts = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            texts.append(fh.read())
    # a few non-Latin lines so multi-byte characters get merges too
    texts.append("caf\u00e9 na\u00efve \u00e9t\u00e9 \u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627 \u041f\u0440\u0438\u0432\u0435\u0442 " * 20)
    return texts


def gpt2():
    bpe = models.BPE.from_file(os.path.join(GPT2_DIR, "encoder.json"), os.path.join(GPT2_DIR, "vocab.bpe"))
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    return tok


def bytelevel_bpe(pattern=LLAMA3_PATTERN):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, min_frequency=2, show_progress=False,
                                  special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer=trainer)
    # Whole words no merge sequence reaches (as in Llama-3's vocabulary): with ignore_merges they
    # are one token each.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for w in ["\u0120quick", "\u0120brown", "\u0120lazy", "\u0120jumps", "Hello", "\u0120fox", "\u0120dog"]:
        if w not in vocab:
            vocab[w] = max(vocab.values()) + 1
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    return tok


def metaspace_bpe():
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, show_progress=False,
                                  special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens)
    tok.train_from_iterator(training_text(), trainer=trainer)
    # The byte tokens belong to the model's vocabulary, not to the added tokens (SentencePiece style).
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A </s> <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>")),
                                                                     ("</s>", tok.token_to_id("</s>"))])
    return tok


def variant(base, edit):
    """A copy of `base` with its JSON edited by `edit(spec)`."""
    spec = json.loads(base.to_str())
    edit(spec)
    return Tokenizer.from_str(json.dumps(spec))


def add_tokens_json(spec, tokens):
    next_id = max([t["id"] for t in spec["added_tokens"]] + list(spec["model"]["vocab"].values())) + 1
    for t in tokens:
        entry = {"id": next_id, "content": t[0], "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": False}
        entry.update(t[1])
        spec["added_tokens"].append(entry)
        next_id += 1


def edit_llama2_legacy(spec):
    # Llama-2 / legacy SentencePiece conversion: normalizers Prepend + Replace, no pre-tokenizer.
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    spec["pre_tokenizer"] = None
    spec["model"]["fuse_unk"] = True
    add_tokens_json(spec, [("<mask>", {"special": True, "lstrip": True}),
                           ("<sep>", {"special": True, "rstrip": True}),
                           ("world", {"normalized": True}),
                           ("lo w", {"normalized": True})])


def edit_metaspace_always(spec):
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                             "split": False}
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteFallback"},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False}]}
    spec["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]}


def edit_metaspace_never(spec):
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": True}]}
    spec["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": True}
    spec["normalizer"] = {"type": "NFD"}
    spec["model"]["byte_fallback"] = False
    spec["model"]["fuse_unk"] = False


def edit_split_behaviors(spec):
    # Split behaviours, inverted splits, Digits (contiguous), ByteLevel with its own regex + prefix space.
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKD"}, {"type": "Replace", "pattern": {"String": "``"}, "content": "\""}]}
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": "::"}, "behavior": "Removed", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[,;]"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\$"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": "-+"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[A-Z][a-z]*"}, "behavior": "Isolated", "invert": True},
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}
    spec["model"]["ignore_merges"] = False
    spec["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        spec["post_processor"]]}
    add_tokens_json(spec, [("<tool>", {"special": True, "single_word": True}),
                           ("Hello", {"normalized": True}),
                           ("[[", {"lstrip": True, "rstrip": True}),
                           ("\u00e9t\u00e9", {"normalized": True, "special": True})])


def edit_qwen2(spec):
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = QWEN2_PATTERN
    spec["model"]["ignore_merges"] = False
    spec["normalizer"] = None
    spec["post_processor"] = None
    add_tokens_json(spec, [("<|im_start|>", {"special": True}), ("<|im_end|>", {"special": True}),
                           ("<think>", {"special": False}), ("</think>", {"special": False})])


def edit_strip_decoders(spec):
    # A per-token Strip (trailing ▁), a Strip of two leading spaces on the fused text, a Regex
    # Replace normalizer. (A trailing cut on fused text makes the library panic on an empty decode:
    # strip.rs indexes chars[len - 1] of an empty string; the C side returns "", see test_tokenizer.c.)
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"Regex": "[0-9]{2,}"}, "content": "#"}, {"type": "NFC"}]}
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Strip", "content": "\u2581", "start": 0, "stop": 1},
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 2, "stop": 0}]}


def edit_bytelevel_then_strip(spec):
    # ByteLevel decoding followed by another decoder (its lossy UTF-8 step happens in the middle).
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    spec["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = True


def edit_prepend_split_first(spec):
    # Prepend lines its text up with the first character, so the piece after a split right behind it
    # still starts at original offset 0 and Metaspace("first") prepends there too.
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Replace", "pattern": {"String": "ab"}, "content": "Q"}, {"type": "Prepend", "prepend": "x"}]}
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}]}


def edit_regex_edges(spec):
    # Oniguruma semantics: ^ / $ at line boundaries, \h = hex digit, empty matches; inverted
    # MergedWithPrevious split; a replacement of the first character.
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": "^.|.$|\\h{3,}"}, "content": "QQ"},
        {"type": "Replace", "pattern": {"Regex": "z*"}, "content": "-"}]}
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "\\S+|(?=x)|a*"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"String": "e"}, "behavior": "MergedWithPrevious", "invert": True},
        {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}]}


def edit_no_decoder(spec):
    spec["decoder"] = None
    spec["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed",
                             "invert": False}
    spec["normalizer"] = {"type": "Lowercase"}


EXTRA_CASES = [
    "a::b::c, d; e$f $g --h---i -j",
    "Hello<tool> <tool>x <tool> y[[  z  [[w",
    "MixedCaseWords AndMore ``quoted`` HelloHello hello",
    "\u00e9t\u00e9 e\u0301te\u0301 \u00c9T\u00c9",
    "lo w low lo  w <mask> x  <mask>y <sep>  z",
    "<|im_start|>user\nhi<|im_end|>\n<think>\n</think>",
    "Price: $5,000.00; 1234567 items",
    "2024 started, 7 days",
    "line one\nline two\n\nbeef cafe 123abc\nend",
    "\f \tx",
    "a,,b;;c, ,d$$e--f",
]


RANDOM_POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  \t\n\r", ".,;:!?'\"()[]{}<>-_=+*/|@#$%",
    "\u00e9\u00e8\u00ea\u00e0\u00f4\u00fc\u00e7\u00f1\u00c5", "e\u0301a\u0308", "\u65e5\u672c\u8a9e\u4e2d\u6587",
    "\u0645\u0631\u062d\u0628\u0627", "\u03a3\u03c3\u03c2\u0130\u00df\ufb01\u2460", "\U0001F600\U0001F3FD\u200d",
    "\u00a0\u3000\u2028\u0085\u180e", "\u2581", "'s're'LL",
]
RANDOM_SPECIALS = ["<|endoftext|>", "<|begin_of_text|>", "<|end_of_text|>", "<s>", "</s>", "<mask>", "<sep>", "world",
                   "<tool>", "Hello", "[[", "<|im_start|>", "<think>"]


def random_cases(n, seed):
    """Seeded random strings: pieces of several scripts, whitespace and special tokens."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.choice([3, 8, 20])):
            if rng.random() < 0.1:
                parts.append(rng.choice(RANDOM_SPECIALS))
            else:
                pool = rng.choice(RANDOM_POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 4))))
        out.append("".join(parts))
    return out


def random_id_lists(tok, n, seed):
    """Seeded random id sequences (byte tokens often, ids past the vocabulary sometimes) for decode."""
    rng = random.Random(seed)
    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1
    byte_ids = sorted(i for t, i in vocab.items() if t.startswith("<0x")) or list(range(size))
    nul = {vocab.get("<0x00>"), vocab.get("\u0100")}  # decoded NULs cannot travel in C strings
    lists = []
    for _ in range(n):
        ids = [rng.choice(byte_ids) if rng.random() < 0.4 else rng.randrange(size + 3)
               for _ in range(rng.choice([1, 2, 4, 9, 25]))]
        lists.append([i for i in ids if i not in nul])
    return lists


def write(out_dir, name, tok, cases, token_ids):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"), pretty=False)
    # Round trip through the file so the goldens come from what the C side reads.
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    data = {
        "generator": f"tools/tokenizers/make_goldens.py, tokenizers {tokenizers.__version__}",
        "vocab_size": len(tok.get_vocab(with_added_tokens=True)),
        "token_ids": {t: tok.token_to_id(t) for t in token_ids},
        "cases": goldens(tok, cases),
        "decode_cases": [{"ids": ids,
                          "decoded_hex": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex(),
                          "decoded_skip_hex": tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex()}
                         for ids in random_id_lists(tok, 40, 7)],
    }
    with open(os.path.join(d, "golden.json"), "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=True, separators=(",", ":"))
        fh.write("\n")
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures",
                                                  "tokenizers"))
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    cases = CORPUS + EXTRA_CASES + random_cases(30, 1234)
    g = gpt2()
    bl = bytelevel_bpe()
    ms = metaspace_bpe()
    specs = [
        ("gpt2", g, ["<|endoftext|>", "Hello", "\u0120world", "nope-not-a-token"]),
        ("bytelevel_bpe", bl, ["<|begin_of_text|>", "<|end_of_text|>", "the"]),
        ("metaspace_bpe", ms, ["<s>", "</s>", "<unk>", "<0x41>", "\u2581the"]),
        ("llama2_legacy", variant(ms, edit_llama2_legacy), ["<mask>", "<sep>", "world"]),
        ("metaspace_always", variant(ms, edit_metaspace_always), ["<s>"]),
        ("metaspace_never", variant(ms, edit_metaspace_never), ["<s>"]),
        ("split_behaviors", variant(bl, edit_split_behaviors), ["<tool>", "Hello", "[["]),
        ("qwen2_style", variant(bl, edit_qwen2), ["<|im_start|>", "<think>"]),
        ("no_decoder", variant(ms, edit_no_decoder), ["<s>"]),
        ("strip_decoders", variant(ms, edit_strip_decoders), ["<s>"]),
        ("prepend_split_first", variant(ms, edit_prepend_split_first), ["<s>"]),
        ("regex_edges", variant(ms, edit_regex_edges), ["<s>"]),
        ("bytelevel_strip", variant(bl, edit_bytelevel_then_strip), ["<|begin_of_text|>"]),
    ]
    total = 0
    for name, tok, ids in specs:
        d = write(out, name, tok, cases, ids)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size
        print(f"{name}: {size} bytes")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
