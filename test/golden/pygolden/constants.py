"""Token strings, chat template and preprocessing constants shared by every fixture generator."""

# Qwen2.5-VL's special added tokens, in the order (and therefore id order) of the released tokenizer.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# V-Reflection's additions (method.md §2.2), added after the base vocabulary in this order.
LVR_TOKENS = ["<|lvr_start|>", "<|lvr|>", "<|lvr_latent_end|>", "<|lvr_end|>"]

# The Qwen2 pre-tokenizer split pattern (model.md §7.3).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2.5-VL-Instruct chat template, verbatim from model.md §7.1.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}"
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# Small limits used by the tiny checkpoints so prompts stay short.
TINY_MIN_PIXELS = 8 * 28 * 28
TINY_MAX_PIXELS = 96 * 28 * 28
# Released Qwen2.5-VL defaults and the common 1280-token cap.
DEFAULT_MIN_PIXELS = 3136
DEFAULT_MAX_PIXELS = 12845056
CAP_1280_MAX_PIXELS = 1280 * 28 * 28

REPETITION_PENALTY_DEFAULT = 1.05
