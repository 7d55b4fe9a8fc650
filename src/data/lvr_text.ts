// Text transformation of a LLaVA conversation (method.md §2.4; upstream data_utils.py::llava_to_openai_lvr with
// fixed_num_of_lvr_tokens = 8, latent_end_token = False). Applied to every turn, human and gpt, in this order:
// 1. every `\n?<image>\n?` becomes `<|vision_start|><|image_pad|><|vision_end|>` (the adjacent newlines go);
// 2. if the turn contains `<lvr>`: split on `<lvr>`, DROP the text before the first one (upstream quirk B8), and
//    rebuild as sum_k(`<|lvr_start|>` + `<|lvr|>` x N + `<|lvr_end|>` + segment_k); newlines after `<lvr>` stay.
// Roles: human -> user, gpt -> assistant.
import { LVR_PLACEHOLDER, TOKENS } from './constants';
import type { Turn } from './records';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

const IMAGE_RE = /\n?<image>\n?/g;

export function replaceImagePlaceholders(s: string): string {
  return s.replace(IMAGE_RE, `${TOKENS.visionStart}${TOKENS.imagePad}${TOKENS.visionEnd}`);
}

export function replaceLvrPlaceholders(s: string, latentCount: number): string {
  if (!s.includes(LVR_PLACEHOLDER)) return s;
  const block = TOKENS.lvrStart + TOKENS.lvr.repeat(latentCount) + TOKENS.lvrEnd;
  return s
    .split(LVR_PLACEHOLDER)
    .slice(1)
    .map((seg) => block + seg)
    .join('');
}

export function transformConversation(turns: readonly Turn[], latentCount: number): ChatTurn[] {
  return turns.map((t) => ({
    role: t.from === 'human' ? 'user' : 'assistant',
    content: replaceLvrPlaceholders(replaceImagePlaceholders(t.value), latentCount),
  }));
}
