"""Trains the tiny byte-level BPE tokenizer (Qwen2 pre-tokenizer, Qwen special tokens, LVR tokens) and writes
its tokenizer.json / tokenizer_config.json / chat_template.json."""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from .constants import CHAT_TEMPLATE, LVR_TOKENS, QWEN_SPECIAL_TOKENS, QWEN_SPLIT_PATTERN

# Number of entries of the trained BPE vocabulary (256 byte symbols + merges); added tokens come after it.
BPE_VOCAB_SIZE = 360

# Small English corpus. It contains every word of the prompts and of the chat template so that those words
# become multi-byte tokens and prompts stay short.
CORPUS = """
You are a helpful assistant. You are a helpful assistant who answers questions about images.
system user assistant system user assistant
What is shown here? Answer briefly. What is shown in the picture? Answer briefly and directly.
Describe the picture in one sentence. Describe the image in one short sentence.
Which color is the sky? Options: A. red B. blue C. green D. yellow
Answer with the option's letter from the given choices directly.
How many shapes are there? Count them. There are three shapes: a circle, a square and a line.
Is the cat on the left or the right? The cat is on the left of the dog, and the dog is on the right.
Read the text in the image. The text says hello world.
The child on the swing is wearing dark blue shorts. The sky is blue and the grass is green.
A red car is parked next to a white house. Two birds sit on the roof of the house.
Look at the region again and think about the answer before you reply.
<answer> A </answer> <answer> B </answer> <answer> C </answer> <answer> D </answer>
This is a small picture with a smooth color gradient and some noise. It's a test image; it doesn't show much.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 24 96 100 2024 3.14 and 42.
The quick brown fox jumps over the lazy dog. The lazy dog sleeps in the sun all day long.
"""


def _repeated_corpus():
    # Repeat the lines so that pair frequencies are well above min_frequency; order is fixed for determinism.
    lines = [line for line in CORPUS.strip().split("\n")]
    return lines * 4


def train_tiny_tokenizer():
    """Returns a tokenizers.Tokenizer with exactly Qwen2's normalizer/pre-tokenizer/decoder."""
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_repeated_corpus(), trainer=trainer)
    base = tok.get_vocab_size(with_added_tokens=False)
    if base != BPE_VOCAB_SIZE:
        raise RuntimeError(f"trained vocabulary has {base} entries, expected {BPE_VOCAB_SIZE}; enlarge the corpus")
    specials = [AddedToken(s, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
                for s in QWEN_SPECIAL_TOKENS + LVR_TOKENS]
    tok.add_special_tokens(specials)
    tok = _with_qwen_json_fields(tok)
    for i, s in enumerate(QWEN_SPECIAL_TOKENS + LVR_TOKENS):
        if tok.token_to_id(s) != base + i:
            raise RuntimeError(f"special token {s} got id {tok.token_to_id(s)}, expected {base + i}")
    return tok


def _with_qwen_json_fields(tok):
    """The Python constructors do not expose every field; make the JSON match Qwen's tokenizer.json exactly
    (ByteLevel decoder flags, empty subword prefix/suffix strings)."""
    doc = json.loads(tok.to_str())
    doc["decoder"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    doc["model"]["continuing_subword_prefix"] = ""
    doc["model"]["end_of_word_suffix"] = ""
    return Tokenizer.from_str(json.dumps(doc, ensure_ascii=False))


def token_ids(tok):
    """Ids of the tokens the configs refer to."""
    t = tok.token_to_id
    return {
        "endoftext": t("<|endoftext|>"), "im_start": t("<|im_start|>"), "im_end": t("<|im_end|>"),
        "vision_start": t("<|vision_start|>"), "vision_end": t("<|vision_end|>"), "vision_pad": t("<|vision_pad|>"),
        "image_pad": t("<|image_pad|>"), "video_pad": t("<|video_pad|>"),
        "lvr_start": t("<|lvr_start|>"), "lvr": t("<|lvr|>"), "lvr_latent_end": t("<|lvr_latent_end|>"),
        "lvr_end": t("<|lvr_end|>"),
    }


def tokenizer_config(tok):
    """tokenizer_config.json in the shape Qwen2.5-VL ships (plus the LVR tokens V-Reflection adds)."""
    decoder = {}
    for s in QWEN_SPECIAL_TOKENS + LVR_TOKENS:
        decoder[str(tok.token_to_id(s))] = {
            "content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
            "special": True,
        }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": QWEN_SPECIAL_TOKENS[1:] + LVR_TOKENS,
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def write_tokenizer_files(tok, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"), pretty=True)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(tok), f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(out_dir, "chat_template.json"), "w", encoding="utf-8") as f:
        json.dump({"chat_template": CHAT_TEMPLATE}, f, indent=2, ensure_ascii=False)
        f.write("\n")
