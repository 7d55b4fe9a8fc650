"""Synthetic LVR training samples on the tiny vocabulary, and the two layouts of a micro-batch: upstream's padded
rows (the PyTorch reference) and our packed TrainBatch (src/data/batch.ts field names, what the native Trainer
takes)."""
import numpy as np
import torch

from pygolden.reference import own_rope_index

LATENT = 8
PATCH_DIM = 3 * 2 * 14 * 14


def pixel_values(seed, patches):
    """Deterministic patch rows, exactly reproducible in TypeScript:
    v[p, c] = float32(((p*131 + c*71 + seed*977) mod 1000) / 500 - 1)."""
    p = np.arange(patches, dtype=np.int64)[:, None]
    c = np.arange(PATCH_DIM, dtype=np.int64)[None, :]
    return (((p * 131 + c * 71 + seed * 977) % 1000) / 500.0 - 1.0).astype(np.float32)


def make_sample(rng, ids, grids, boxes, seeds):
    """One chat sample: system turn, user turn with the images, assistant response with one
    <|lvr_start|> <|lvr|>x8 <|lvr_end|> block per box. Labels: -100 before the response, the ids on it."""
    text = lambda n: [int(x) for x in rng.integers(0, 360, n)]  # noqa: E731
    nl = 10
    seq = [ids["im_start"]] + text(4) + [ids["im_end"], nl, ids["im_start"]] + text(2)
    for g in grids:
        seq += [ids["vision_start"]] + [ids["image_pad"]] * (g[0] * g[1] * g[2] // 4) + [ids["vision_end"]]
    seq += text(5) + [ids["im_end"], nl, ids["im_start"]] + text(2)
    prompt_len = len(seq)
    for _ in boxes:
        seq += [ids["lvr_start"]] + [ids["lvr"]] * LATENT + [ids["lvr_end"]] + text(3)
    seq += text(3) + [ids["im_end"], nl]
    labels = [-100] * prompt_len + seq[prompt_len:]
    return {"ids": seq, "labels": labels, "grids": [list(g) for g in grids], "boxes": [list(b) for b in boxes],
            "seeds": list(seeds)}


def ce_ignored(stage, ids):
    return {ids["lvr_latent_end"]} if stage == 1 else {ids["lvr"], ids["lvr_latent_end"]}


def padded_batch(samples, ids):
    """Upstream's collation (method.md §5.3): right-padded rows, per-row M-RoPE positions (padding: 1)."""
    n, L = len(samples), max(len(s["ids"]) for s in samples)
    input_ids = torch.full((n, L), ids["endoftext"], dtype=torch.long)
    labels = torch.full((n, L), -100, dtype=torch.long)
    mask = torch.zeros((n, L), dtype=torch.long)
    pos = torch.ones((3, n, L), dtype=torch.long)
    for r, s in enumerate(samples):
        k = len(s["ids"])
        input_ids[r, :k] = torch.tensor(s["ids"])
        labels[r, :k] = torch.tensor(s["labels"])
        mask[r, :k] = 1
        p, _ = own_rope_index(s["ids"], s["grids"], ids["image_pad"], ids["vision_start"])
        pos[:, r, :k] = torch.tensor(p)
    grids = [g for s in samples for g in s["grids"]]
    pv = np.concatenate([pixel_values(sd, g[0] * g[1] * g[2]) for s in samples for g, sd in zip(s["grids"], s["seeds"])])
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask, "position_ids": pos,
            "pixel_values": torch.from_numpy(pv), "image_grid_thw": torch.tensor(grids, dtype=torch.long),
            "lvr_tokens": [torch.tensor(b, dtype=torch.int32) for s in samples for b in s["boxes"]]}


def packed_batch(samples, ids, stage):
    """Our TrainBatch: samples back to back, cu_seqlens, positions restarting per sample, shifted targets."""
    ign = ce_ignored(stage, ids)
    b = {k: [] for k in ["inputIds", "positions", "labels", "targets", "imageGrids", "cuImageTokens", "boxTokenIdx",
                         "boxLocalIdx", "cuBoxTokens", "boxSample", "lvrSlots"]}
    b.update(cuSeqlens=[0], cuSampleVisual=[0], images=[])
    planes, tok, vis = [[], [], []], 0, 0
    for si, s in enumerate(samples):
        L = len(s["ids"])
        b["inputIds"] += s["ids"]
        b["labels"] += s["labels"]
        for i in range(L):
            t = s["labels"][i + 1] if i + 1 < L else -100
            b["targets"].append(t if t != -100 and t not in ign else -100)
        p, _ = own_rope_index(s["ids"], s["grids"], ids["image_pad"], ids["vision_start"])
        for a in range(3):
            planes[a] += p[a]
        first = vis
        for g, sd in zip(s["grids"], s["seeds"]):
            b["cuImageTokens"].append(vis)
            b["imageGrids"] += g
            b["images"].append({"seed": sd, "grid": g})
            vis += g[0] * g[1] * g[2] // 4
        slots = [i for i, x in enumerate(s["ids"]) if x == ids["lvr"]]
        assert len(slots) == LATENT * len(s["boxes"])
        for k, box in enumerate(s["boxes"]):
            b["cuBoxTokens"].append(len(b["boxTokenIdx"]))
            b["boxSample"].append(si)
            b["boxLocalIdx"] += box
            b["boxTokenIdx"] += [first + j for j in box]
            b["lvrSlots"] += [tok + j for j in slots[LATENT * k: LATENT * (k + 1)]]
        tok += L
        b["cuSeqlens"].append(tok)
        b["cuSampleVisual"].append(vis)
    b["cuImageTokens"].append(vis)
    b["cuBoxTokens"].append(len(b["boxTokenIdx"]))
    b["positions"] = planes[0] + planes[1] + planes[2]
    b.update(numSamples=len(samples), numTokens=tok, numTargets=sum(t != -100 for t in b["targets"]),
             patchDim=PATCH_DIM, numImages=len(b["images"]), numVisualTokens=vis, latentCount=LATENT,
             numBoxes=len(b["boxSample"]))
    return b
