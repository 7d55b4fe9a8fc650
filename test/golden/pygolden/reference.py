"""Reference computations on top of the transformers model: prompt forward with hooks, M-RoPE positions (own
implementation, cross-checked with get_rope_index), and the plain / V-Reflection latent greedy decode loop."""
import torch


def own_rope_index(input_ids, image_grid_thw, image_pad_id, vision_start_id, merge=2):
    """model.md §6.1 / method.md Appendix A, written independently of transformers."""
    ids = list(input_ids)
    pos = [[], [], []]
    nxt, i, img = 0, 0, 0
    while i < len(ids):
        if ids[i] == image_pad_id and i > 0 and ids[i - 1] == vision_start_id:
            _, gh, gw = image_grid_thw[img]
            hp, wp = gh // merge, gw // merge
            for r in range(hp):
                for c in range(wp):
                    pos[0].append(nxt)
                    pos[1].append(nxt + r)
                    pos[2].append(nxt + c)
            i += hp * wp
            nxt += max(hp, wp)
            img += 1
        else:
            for a in range(3):
                pos[a].append(nxt)
            nxt += 1
            i += 1
    delta = max(max(p) for p in pos) + 1 - len(ids)
    return pos, delta


class NormHook:
    """Captures the output of the LLM's final RMSNorm (the post-norm hidden states fed to lm_head)."""

    def __init__(self, model):
        self.value = None
        self.handle = model.model.language_model.norm.register_forward_hook(self._hook)

    def _hook(self, module, args, output):
        self.value = output.detach()

    def remove(self):
        self.handle.remove()


class EmbedHook:
    """Captures the input of LLM layer 0 (token embeddings after the image scatter)."""

    def __init__(self, model):
        self.value = None
        self.handle = model.model.language_model.layers[0].register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]
        self.value = x.detach()

    def remove(self):
        self.handle.remove()


def prompt_forward(model, inputs, position_ids):
    """Full-prompt forward (no cache). Returns logits [L,V], post-norm hidden [L,D], vision features [Nt,D_out],
    scattered input embeddings [L,D]."""
    norm, emb = NormHook(model), EmbedHook(model)
    try:
        with torch.no_grad():
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                        mm_token_type_ids=inputs["mm_token_type_ids"], position_ids=position_ids, use_cache=False)
            feats = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]).pooler_output
    finally:
        norm.remove()
        emb.remove()
    return out.logits[0].float(), norm.value[0].float(), torch.cat(list(feats), 0).float(), emb.value[0].float()


def repetition_penalty(logits, seq, penalty):
    """HF RepetitionPenaltyLogitsProcessor: each distinct id of the sequence once, s<0 ? s*p : s/p."""
    scores = logits.clone()
    if penalty != 1.0:
        idx = torch.tensor(sorted(set(seq)), dtype=torch.long)
        s = scores[idx]
        scores[idx] = torch.where(s < 0, s * penalty, s / penalty)
    return scores


def top2_margin(scores):
    top = torch.topk(scores, 2).values
    return float(top[0] - top[1])


def greedy_decode(model, inputs, position_ids, rope_delta, *, penalty, max_new_tokens, im_end_id, lvr_start_id,
                  latent_steps):
    """Greedy decode with KV cache. latent_steps == 0: plain decoding. latent_steps > 0: method.md §12.3
    ("steps" strategy): the start check looks at the token just fed (the prompt's last token at prefill);
    while latent mode is on the input embedding is the previous step's post-norm hidden state; sampled ids
    are always appended; neither <|im_end|> nor the token limit stops generation while the mode is on."""
    ids = inputs["input_ids"][0].tolist()
    L = len(ids)
    embed = model.model.language_model.embed_tokens
    norm = NormHook(model)
    rec = {"generated": [], "step_logits": [], "step_hidden": [], "step_input_is_hidden": [], "margins": [],
           "step_positions": [], "stop_reason": None}
    try:
        with torch.no_grad():
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        pixel_values=inputs["pixel_values"], image_grid_thw=inputs["image_grid_thw"],
                        mm_token_type_ids=inputs["mm_token_type_ids"], position_ids=position_ids, use_cache=True)
            cache = out.past_key_values
            seq = list(ids)
            mode, remaining, fed_hidden, k = False, 0, False, 0
            while True:
                logits = out.logits[0, -1].float()
                hidden = norm.value[0, -1].float()
                rec["step_logits"].append(logits)
                rec["step_hidden"].append(hidden)
                rec["step_input_is_hidden"].append(fed_hidden)
                scores = repetition_penalty(logits, seq, penalty)
                rec["margins"].append(top2_margin(scores))
                nxt = int(torch.argmax(scores))          # torch returns the first (lowest) index on ties
                new_mode = False
                if latent_steps > 0:
                    start = seq[-1] == lvr_start_id      # the token fed by this step's forward
                    new = mode or start
                    if new and not mode:
                        remaining = latent_steps
                    if mode:
                        remaining -= 1
                    new_mode = new and remaining > 0
                prev_h = hidden
                seq.append(nxt)
                rec["generated"].append(nxt)
                stop = nxt == im_end_id or len(rec["generated"]) >= max_new_tokens
                mode = new_mode
                if not mode and stop:
                    rec["stop_reason"] = "eos" if nxt == im_end_id else "max_new_tokens"
                    break
                x = prev_h if mode else embed(torch.tensor([nxt])).float()[0]
                fed_hidden = mode
                p = L + k + rope_delta
                rec["step_positions"].append(p)
                pos = torch.full((3, 1, 1), p, dtype=torch.long)
                out = model(inputs_embeds=x.view(1, 1, -1).to(embed.weight.dtype), position_ids=pos,
                            past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                k += 1
    finally:
        norm.remove()
    return rec


def recompute_without_cache(model, prompt_embeds, prompt_positions, rec, rope_delta):
    """Re-runs prompt + every decode input as ONE sequence (no KV cache) and returns the logits at the positions
    that produced each generated token; checks the cached loop."""
    embed = model.model.language_model.embed_tokens
    L = prompt_embeds.shape[0]
    rows = [prompt_embeds]
    pos = [prompt_positions[:, 0, :]]
    for i in range(1, len(rec["generated"])):
        if rec["step_input_is_hidden"][i]:
            rows.append(rec["step_hidden"][i - 1].view(1, -1))
        else:
            rows.append(embed(torch.tensor([rec["generated"][i - 1]])).float())
        pos.append(torch.full((3, 1), L + i - 1 + rope_delta, dtype=torch.long))
    x = torch.cat(rows, 0)[None]
    p = torch.cat(pos, 1)[:, None, :]
    with torch.no_grad():
        out = model(inputs_embeds=x, position_ids=p, use_cache=False)
    return out.logits[0, L - 1:].float()
