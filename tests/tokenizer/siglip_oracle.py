#!/usr/bin/python3
"""Cross-check rsclip's tokenizer against an independent oracle on random texts.

The oracle is transformers' SiglipTokenizer (v4.44.2, slow) re-written in Python from its source
description (SIGLIP_SPEC.md section 8) around the REAL sentencepiece 0.1.97 library (Debian
python3-sentencepiece): Python's own str.lower, str.isspace / re \\s, string.punctuation, and
sentencepiece's own normalizer and Viterbi (so exact score ties are decided by the real code).
The model is patched like transformers' get_spm_processor does (add_dummy_prefix = false): an
extra NormalizerSpec {add_dummy_prefix: false} is appended to the serialized ModelProto, which
protobuf merges into the existing one.

usage: siglip_oracle.py ENCODER_BINARY SPIECE_MODEL [N_TEXTS] [SEED]
Exit 77 (ctest SKIP) when the sentencepiece module is not installed.
"""
import random
import re
import string
import subprocess
import sys

try:
    import sentencepiece as spm
except ImportError:
    print("python3-sentencepiece not installed: skipping")
    sys.exit(77)

UNDERLINE = "\u2581"
EOS, UNK, PAD = "</s>", "<unk>", "</s>"
SPECIALS = [EOS, UNK]  # all_special_tokens: eos, unk (pad repeats eos)
MAX_LEN = 64


class Oracle:
    def __init__(self, model_path):
        data = open(model_path, "rb").read()
        # field 3 (normalizer_spec), length 2: field 3 (add_dummy_prefix) varint 0
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(data + b"\x1a\x02\x18\x00")
        self.unk_len = len(self.sp.encode(UNK))

    def canonicalize(self, text):
        text = text.translate(str.maketrans("", "", string.punctuation))
        text = re.sub(r"\s+", " ", text)
        return text.strip()

    def _tokenize(self, text):
        text = self.canonicalize(text)
        toks = self.sp.encode(UNK + text, out_type=str)
        return toks[self.unk_len:] if len(toks) >= self.unk_len else toks

    def split_specials(self, text):
        # leftmost-longest split on the special-token strings (tokens_trie.split)
        out, i, start = [], 0, 0
        while i < len(text):
            hit = None
            for s in SPECIALS:
                if text.startswith(s, i) and (hit is None or len(s) > len(hit)):
                    hit = s
            if hit:
                if i > start:
                    out.append(text[start:i])
                out.append(hit)
                i += len(hit)
                start = i
            else:
                i += 1
        if start < len(text):
            out.append(text[start:])
        return out

    def tokenize(self, text):
        text = UNDERLINE + text.replace(UNDERLINE, " ")
        pattern = "(" + "|".join(re.escape(s) for s in SPECIALS) + ")|(.+?)"
        text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        tokens = self.split_specials(text)
        for i, tok in enumerate(tokens):
            if tok in SPECIALS:
                left = tokens[i - 1] if i > 0 else None
                right = tokens[i + 1] if i < len(tokens) - 1 else None
                if right:
                    tokens[i + 1] = right.lstrip()
                if left:
                    tokens[i - 1] = left.rstrip()
        out = []
        for tok in tokens:
            if not tok:
                continue
            if tok in SPECIALS:
                out.append(tok)
            else:
                out.extend(self._tokenize(tok))
        if len(out) > 1 and out[0] == UNDERLINE and out[1] in SPECIALS:
            out = out[1:]
        return out

    def encode(self, text, max_len=MAX_LEN):
        ids = [self.sp.piece_to_id(t) for t in self.tokenize(text)]
        eos = self.sp.piece_to_id(EOS)
        pad = self.sp.piece_to_id(PAD)
        if len(ids) + 1 > max_len and max_len > 1:
            ids = ids[: len(ids) - (len(ids) + 1 - max_len)]
        if not (ids and ids[-1] == eos):
            ids = ids + [eos]
        return ids + [pad] * (max_len - len(ids))


WORDS = ("a remote sensing image of the river with dense residential buildings near highway airport "
         "runways storage tanks ships port farmland irrigation circles canal solar panels field "
         "baseball diamond forest lake bridge park stadium school greenhouse suburb coastline "
         "factory hill trucks cars boats").split()
ODD = ["</s>", "<unk>", "</S>", "<UNK>", "<s>", "<pad>", "<unk", "</s", "unk>", UNDERLINE, UNDERLINE * 2,
       "\u0130", "\u03a3", "\u1e9e", "\u00df", "\ufb01", "\u2460", "\u339e", "\u216b", "\u2116",
       "\uff02", "\uff01", "\u2026", "\u00a8", "\u00b4", "\u00a0", "\u3000", "\u2003", "\u200b",
       "\u2028", "\u0085", "\x1c", "\x1f", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u00fc", "u\u0308",
       "\u6c34\u5e93", "\U0001f600", "\u2014", "\u00b0", "\u2018", "\u2019", "\uff21\uff22",
       "1000000", "0000", "111", "2024", "45.5", "3.14159", "..", "!!!", "--", "'s", "(x)",
       "xy", "xyx", "ccc", "cccc", "aba", "bab", "A", "AAb", "the", "\u2581the",
       "\u212a", "\u2126", "\u1f88", "\u0345", "\u00c5", "\ufe0f", "\u0301", "\x00", "\x7f"]


NFKC_RANGES = [(0x41, 0x7A), (0x300, 0x36F), (0xC0, 0x24F), (0x1100, 0x11FF), (0xAC00, 0xAC40),
               (0xFB50, 0xFDFF), (0xFE70, 0xFEFF), (0xFF61, 0xFF9F), (0x3099, 0x309C),
               (0x304B, 0x3062), (0xF900, 0xFAFF), (0x3200, 0x33FF), (0x1D400, 0x1D7FF),
               (0x2150, 0x218B), (0x2460, 0x24FF), (0x1E00, 0x1EFF), (0x0E00, 0x0E7F),
               (0x0900, 0x097F), (0xFF01, 0xFF5E), (0x2000, 0x206F), (0x0590, 0x05FF)]


def random_text(rng):
    parts = []
    for _ in range(rng.randint(0, 14)):
        r = rng.random()
        if r < 0.45:
            w = rng.choice(WORDS)
            if rng.random() < 0.2:
                w = w.upper() if rng.random() < 0.5 else w.capitalize()
            parts.append(w)
        elif r < 0.65:
            parts.append(rng.choice(ODD))
        elif r < 0.75:
            parts.append("".join(rng.choice(string.punctuation) for _ in range(rng.randint(1, 3))))
        elif r < 0.85:
            parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9))))
        elif r < 0.92:
            # ranges where NFKC composes, decomposes or reorders (multi-character charsmap rules)
            lo, hi = rng.choice(NFKC_RANGES)
            parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 4))))
        else:
            cp = rng.randint(0, 0x10FFFF) if rng.random() < 0.3 else rng.randint(0x20, 0x3000)
            if 0xD800 <= cp <= 0xDFFF:
                cp = 0x20
            parts.append(chr(cp))
        parts.append(rng.choice([" ", " ", " ", "", "  ", "\t", "\u00a0", " \n "]))
    return "".join(parts)


def main():
    exe, model = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1234
    rng = random.Random(seed)
    oracle = Oracle(model)
    texts = [random_text(rng) for _ in range(n)]
    # a few long ones (truncation) and tie-prone digit runs
    texts += [" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))) for _ in range(10)]
    texts += ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40))) for _ in range(40)]
    blob = b"".join(b"%d\n" % len(t.encode("utf-8")) + t.encode("utf-8") for t in texts)
    res = subprocess.run([exe, model, str(MAX_LEN)], input=blob, capture_output=True, check=True)
    lines = res.stdout.decode().splitlines()
    assert len(lines) == len(texts), (len(lines), len(texts))
    bad = 0
    for t, line in zip(texts, lines):
        got = [int(x) for x in line.split()]
        want = oracle.encode(t)
        if got != want:
            bad += 1
            if bad <= 10:
                print("MISMATCH for %r\n  rsclip: %s\n  oracle: %s" % (t, got, want))
    print("%d texts, %d mismatches" % (len(texts), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
