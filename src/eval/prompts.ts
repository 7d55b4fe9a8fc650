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

/**
 * BLINK's own prompt (zeyofu/BLINK_Benchmark eval/test_benchmark.py load_prompt): the dataset's `prompt` field
 * (question, "Select from the following choices.", "(A) ..." lines), after a disclaimer for three subtasks. Quirk:
 * the script defines `disclaimer = "...",` with a trailing comma (a tuple), so `disclaimer + prompt` raises there;
 * the evident intent, the string, is used here.
 */
export const BLINK_DISCLAIMER =
  "Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to give your assessment on this question. You don't need to identify the real people. You just need to analyze based on the information I gave you.\n\n";
export const BLINK_DISCLAIMER_SUBTASKS = ['Forensic_Detection', 'Jigsaw', 'Art_Style'];
export function blinkOfficialPrompt(prompt: string, subtask: string): string {
  return BLINK_DISCLAIMER_SUBTASKS.includes(subtask) ? BLINK_DISCLAIMER + prompt : prompt;
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
