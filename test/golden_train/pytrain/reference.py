"""Upstream's training forward and loss (method.md §7-§10.1), in our own words, on a transformers
Qwen2_5_VLForConditionalGeneration (fp32, eager attention) with padded rows as upstream collates them."""
import torch
import torch.nn.functional as F


def _pad_stack(rows, dim):
    n, m = len(rows), max(r.shape[0] for r in rows)
    out = torch.zeros(n, m, dim)
    mask = torch.ones(n, m, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = False
    return out, mask


def _guard(x):
    """Trainer component guard: nan_to_num when not finite, else clamp to [0, 100]."""
    if not torch.isfinite(x).all():
        return torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return torch.clamp(x, 0.0, 100.0)


def forward_loss(model, bcm, dac, batch, ids, stage, lam, lam_attn, latent=8):
    """Returns (total loss tensor with grad, dict of logged floats)."""
    input_ids, labels = batch["input_ids"], batch["labels"]
    D = model.config.text_config.hidden_size
    lm = model.model.language_model
    with torch.no_grad():  # frozen vision tower and merger
        feats = model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
        V = torch.cat(list(feats), 0)
    E = lm.embed_tokens(input_ids)
    img = input_ids == ids["image_pad"]
    E = E.masked_scatter(img.unsqueeze(-1).expand_as(E), V)

    total_tokens = img.sum(1)
    offset = torch.cumsum(total_tokens, 0) - total_tokens
    bi, pi = torch.nonzero(input_ids == ids["lvr"], as_tuple=True)
    boxes = batch["lvr_tokens"]
    n = len(boxes)
    assert latent * n == bi.numel()
    rows = [int(bi[latent * i]) for i in range(n)]
    X, M = _pad_stack([V[offset[r] + boxes[i].long()].detach() for i, r in enumerate(rows)], D)
    with torch.no_grad():
        Zfill, _ = bcm(X, M)
    E = E.clone()
    E[bi, pi] = Zfill.reshape(-1, D).detach()

    out = lm(inputs_embeds=E, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"],
             use_cache=False)
    h = out.last_hidden_state
    logits = model.lm_head(h).float()
    tgt = labels[:, 1:].clone()
    ignored = [ids["lvr_latent_end"]] + ([ids["lvr"]] if stage == 2 else [])
    for t in ignored:
        tgt[tgt == t] = -100
    loss_ce = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)

    logged = {"loss_mse": 0.0, "loss_kl": 0.0}
    if stage == 1:
        Z, _ = bcm(X, M)
        Hm1 = h[bi, pi - 1].float().view(n, latent, D)
        Zf = Z.float()
        if not (torch.isfinite(Hm1).all() and torch.isfinite(Zf).all()):
            res = torch.zeros(())
        else:
            Hc, Zc = Hm1.clamp(-1e4, 1e4), Zf.clamp(-1e4, 1e4)
            res = (F.mse_loss(Hc.detach(), Zc) + F.mse_loss(Hc, Zc.detach())) / 2
            if not torch.isfinite(res):
                res = 0.0 * Hm1.sum()
    else:
        with torch.no_grad():
            Zt, At = bcm(X, M, need_attn=True)
        Hq = h[bi, pi].view(n, latent, D)
        Fk, Mf = _pad_stack([V[offset[r]: offset[r] + total_tokens[r]].detach() for r in rows], D)
        Zs, As = dac(Fk, Mf, queries=Hq, need_attn=True)
        if not (torch.isfinite(Zs).all() and torch.isfinite(Zt).all()):
            res = torch.zeros(())
        else:
            mse = F.mse_loss(Zs.float(), Zt.float().detach())
            T = torch.zeros_like(As)
            for i in range(n):
                idx = boxes[i].long()
                valid = idx < As.shape[-1]
                T[i][:, idx[valid]] = At[i][:, : idx.numel()][:, valid]
            kl = F.kl_div(torch.log(As + 1e-9), T, reduction="batchmean")
            logged["loss_mse"], logged["loss_kl"] = mse.item(), kl.item()
            res = mse + lam_attn * kl if torch.isfinite(kl) else mse
            if not torch.isfinite(res):
                res = 0.0 * Zs.sum()

    ce_c, res_c = _guard(loss_ce), _guard(res)
    total = ce_c + lam * res_c
    if not torch.isfinite(total):
        total = ce_c
    total = torch.clamp(total, 0.0, 100.0)
    logged.update(loss=total.item(), loss_ce=ce_c.item(), loss_resampler=res_c.item())
    return total, logged
