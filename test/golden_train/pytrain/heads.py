"""BCM / DAC heads as upstream builds them (method.md §6): nn.MultiheadAttention (bias, batch_first, no dropout)
followed by LayerNorm(eps 1e-6); BCM adds 8 learned queries. Written from the method description."""
import torch
from torch import nn


class Resampler(nn.Module):
    def __init__(self, dim, num_queries=None):
        super().__init__()
        heads = max(1, min(8, dim // 64))
        if num_queries:
            self.queries = nn.Parameter(torch.randn(1, num_queries, dim) * 0.02)
        else:
            self.queries = None
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=0.0, bias=True, batch_first=True)
        self.output_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, kv, key_padding_mask, queries=None, need_attn=False):
        """kv [n, N, D], key_padding_mask [n, N] (True = padding), queries [n, nq, D] (DAC) or the learned ones.
        Returns Z [n, nq, D] and, when asked, the head-averaged attention [n, nq, N]."""
        q = self.queries.expand(kv.shape[0], -1, -1) if queries is None else queries
        out, attn = self.cross_attn(q, kv, kv, key_padding_mask=key_padding_mask, need_weights=need_attn,
                                    average_attn_weights=True)
        return self.output_norm(out), attn


def make_heads(dim, num_queries, seed):
    """BCM and DAC with upstream's initialisation (xavier in_proj, N(0, 0.02) out_proj, zero biases, unit
    LayerNorm), then small random offsets on the biases and LayerNorm so every gradient path is exercised."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    bcm, dac = Resampler(dim, num_queries), Resampler(dim)
    with torch.no_grad():
        for m in (bcm, dac):
            nn.init.normal_(m.cross_attn.out_proj.weight, 0.0, 0.02, generator=g)
            m.cross_attn.in_proj_bias.copy_(0.02 * torch.randn(3 * dim, generator=g))
            m.cross_attn.out_proj.bias.copy_(0.02 * torch.randn(dim, generator=g))
            m.output_norm.weight.copy_(1.0 + 0.1 * torch.randn(dim, generator=g))
            m.output_norm.bias.copy_(0.05 * torch.randn(dim, generator=g))
    return bcm, dac


def head_state(prefix, module):
    """Upstream's checkpoint names: <prefix>.{queries, cross_attn.*, output_norm.*}."""
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()}
