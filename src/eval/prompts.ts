// The user text of each benchmark, exactly as upstream's evaluation.py builds it (docs/method.md Appendix C,
// docs/benchmarks.md §2.4). The generator wraps it in the Qwen2.5-VL chat template, images first.

/** get_task_instruction: appended to every question of all six benchmarks. */
export const TASK_INSTRUCTION = "\nAnswer with the option's letter from the given choices directly.";

export const OPTION_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** BLINK: every option line ends in "\n", so an empty line precedes the instruction. */
export function blinkPrompt(question: string, choices: string[]): string {
  const lines = choices.map((c, i) => `${OPTION_LETTERS[i]}. ${c}\n`).join('');
  return `${question}\nOptions:\n${lines}${TASK_INSTRUCTION}`;
}

/** MMVP: Python's str.replace replaces every "(a)"/"(b)", in the question too. */
export function mmvpPrompt(question: string, options: string): string {
  const text = `${question}\nOptions:\n${options}`.split('(a)').join('A.').split('(b)').join('B.');
  return text + TASK_INSTRUCTION;
}

/** V*: the HF `text` field verbatim (it may already end with the same instruction; upstream appends it anyway). */
export function vstarPrompt(text: string): string {
  return text + TASK_INSTRUCTION;
}

/** HR-Bench: options A-D, empty ones left out, joined by "\n" (no trailing newline). */
export function hrbenchPrompt(question: string, options: Record<'A' | 'B' | 'C' | 'D', string | null | undefined>): string {
  const lines = (['A', 'B', 'C', 'D'] as const)
    .filter((k) => options[k] !== null && options[k] !== undefined && String(options[k]) !== '')
    .map((k) => `${k}. ${options[k]}`);
  return `${question}\nOptions:\n${lines.join('\n')}${TASK_INSTRUCTION}`;
}

/** MME-RealWorld-Lite: the choices keep their own "(A) ..." prefixes. */
export function mmeRealWorldPrompt(text: string, choices: string[]): string {
  return `${text}\nOptions:\n${choices.join('\n')}${TASK_INSTRUCTION}`;
}

/**
 * The full chat text upstream's processor builds (default system prompt, one vision block per image, images
 * before the text). The generator owns tokenisation; this is the reference for it and for tests.
 */
export function qwenChatPrompt(userText: string, imageCount: number): string {
  const vision = '<|vision_start|><|image_pad|><|vision_end|>'.repeat(imageCount);
  return (
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
    `<|im_start|>user\n${vision}${userText}<|im_end|>\n<|im_start|>assistant\n`
  );
}
