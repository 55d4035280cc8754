"""A literal, unoptimised statement of Wave-ViT from ../shared/WAVEVIT_SPEC.md, used as the test oracle.

It keeps the official checkpoint layout to the letter: same module names, and the float16 Haar filter buffers
(``attn.dwt.w_ll/w_lh/w_hl/w_hh``, ``attn.idwt.filters``) that the official release stores. The transform is
computed the way the paper describes it, as strided depthwise convolutions with the four 2x2 Haar filters
(cast to the input's dtype, so fp32 works), and attention as an explicit softmax of ``q k^T * scale``.
Nothing here is shared with wavevit_mm: a fidelity test compares two independent codings of the spec.

It also serves ``benchmarks/bench_backbone.py`` as the plain formulation of the model (``reference-s``):
for that it has the spec's stochastic depth (``drop_path_rate``, linear over all blocks, one Bernoulli draw
per sample in training) and :meth:`ReferenceWaveViT.dense`, the four maps of the dense backbone.
"""
import torch
import torch.nn.functional as F
from torch import nn

ARCHS = {
    's': dict(stem=32, dims=[64, 128, 320, 448], heads=[2, 4, 10, 14], depths=[3, 4, 6, 3]),
    'b': dict(stem=64, dims=[64, 128, 320, 512], heads=[2, 4, 10, 16], depths=[3, 4, 12, 3]),
    'l': dict(stem=64, dims=[96, 192, 384, 512], heads=[3, 6, 12, 16], depths=[3, 6, 18, 3]),
}
MLP_RATIOS = [8, 8, 4, 4]
SR_RATIOS = [4, 2, 1, 1]

# rows are the four sub-bands LL, LH, HL, HH over the 2x2 patch [[a, b], [c, d]]
_HAAR = 0.5 * torch.tensor([[[1., 1.], [1., 1.]], [[1., 1.], [-1., -1.]], [[1., -1.], [1., -1.]],
                            [[1., -1.], [-1., 1.]]])


class DWT(nn.Module):
    def __init__(self):
        super().__init__()
        for name, f in zip(('w_ll', 'w_lh', 'w_hl', 'w_hh'), _HAAR):
            self.register_buffer(name, f[None, None].half())

    def forward(self, x):
        C = x.shape[1]
        outs = [F.conv2d(x, getattr(self, n).to(x.dtype).expand(C, -1, -1, -1), stride=2, groups=C)
                for n in ('w_ll', 'w_lh', 'w_hl', 'w_hh')]
        return torch.cat(outs, dim=1)


class IDWT(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer('filters', _HAAR[:, None].half())

    def forward(self, x):
        B, C4, H, W = x.shape
        C = C4 // 4
        x = x.view(B, 4, C, H, W).transpose(1, 2).reshape(B, C4, H, W)
        return F.conv_transpose2d(x, self.filters.to(x.dtype).repeat(C, 1, 1, 1), stride=2, groups=C)


def softmax_attention(q, k, v, heads):
    B, N, C = q.shape
    d = C // heads
    q = q.reshape(B, N, heads, d).permute(0, 2, 1, 3)
    k = k.reshape(B, -1, heads, d).permute(0, 2, 1, 3)
    v = v.reshape(B, -1, heads, d).permute(0, 2, 1, 3)
    attn = ((q @ k.transpose(-2, -1)) * d ** -0.5).softmax(dim=-1)
    return (attn @ v).transpose(1, 2).reshape(B, N, C)


class WaveAttention(nn.Module):
    def __init__(self, dim, heads, sr):
        super().__init__()
        self.heads = heads
        self.dwt, self.idwt = DWT(), IDWT()
        self.reduce = nn.Sequential(nn.Conv2d(dim, dim // 4, 1), nn.BatchNorm2d(dim // 4), nn.ReLU())
        self.filter = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.kv_embed = nn.Conv2d(dim, dim, sr, stride=sr) if sr > 1 else nn.Identity()
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim))
        self.proj = nn.Linear(dim + dim // 4, dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        f = self.filter(self.dwt(self.reduce(x.view(B, H, W, C).permute(0, 3, 1, 2))))
        local = self.idwt(f).flatten(2).transpose(1, 2)
        k, v = self.kv(self.kv_embed(f).flatten(2).transpose(1, 2)).chunk(2, dim=-1)
        out = softmax_attention(self.q(x), k, v, self.heads)
        return self.proj(torch.cat([out, local], dim=-1))


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x, H, W):
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.proj(softmax_attention(self.q(x), k, v, self.heads))


class DWConvWrap(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.dwconv, self.fc2 = nn.Linear(dim, hidden), DWConvWrap(hidden), nn.Linear(hidden, dim)

    def forward(self, x, H, W):
        x = self.fc1(x)
        B, N, C = x.shape
        x = self.dwconv.dwconv(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


def drop_path(x, p, training):
    """Stochastic depth: in training, zero a sample's branch with probability p and scale the rest by 1/(1-p)."""
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), dtype=x.dtype, device=x.device) >= p
    return x * keep / (1 - p)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, sr, wave, drop_path=0.):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = WaveAttention(dim, heads, sr) if wave else Attention(dim, heads)
        self.mlp = Mlp(dim, dim * mlp_ratio)
        self.drop_path = drop_path

    def forward(self, x, H, W):
        x = x + drop_path(self.attn(self.norm1(x), H, W), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x), H, W), self.drop_path, self.training)


class Embed(nn.Module):
    def __init__(self, cin, cout, stem=None):
        super().__init__()
        if stem is not None:
            self.conv = nn.Sequential(
                nn.Conv2d(cin, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                nn.Conv2d(stem, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                nn.Conv2d(stem, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
            cin = stem
        self.proj = nn.Conv2d(cin, cout, 3, 2, 1)
        self.norm = nn.LayerNorm(cout)

    def forward(self, x):
        if hasattr(self, 'conv'):
            x = self.conv(x)
        x = self.proj(x)
        H, W = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class ClassAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.proj(softmax_attention(self.q(x[:, :1]), k, v, self.heads))


class FFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class ClassBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = ClassAttention(dim, heads), FFN(dim, 4 * dim)

    def forward(self, x):
        cls = x[:, :1] + self.attn(self.norm1(x))
        cls = cls + self.mlp(self.norm2(cls))
        return torch.cat([cls, x[:, 1:]], dim=1)


class ReferenceWaveViT(nn.Module):
    """Official-layout Wave-ViT classifier. ``arch`` is 's'/'b'/'l' or a dict like the entries of ARCHS."""

    def __init__(self, arch='s', num_classes=1000, token_label=True, drop_path_rate=0.):
        super().__init__()
        a = ARCHS[arch] if isinstance(arch, str) else arch
        dims = a['dims']
        rates = iter(torch.linspace(0, drop_path_rate, sum(a['depths'])).tolist())
        for i in range(4):
            embed = Embed(3, dims[0], a['stem']) if i == 0 else Embed(dims[i - 1], dims[i])
            setattr(self, f'patch_embed{i + 1}', embed)
            setattr(self, f'block{i + 1}', nn.ModuleList(
                Block(dims[i], a['heads'][i], MLP_RATIOS[i], SR_RATIOS[i], i < 2, next(rates))
                for _ in range(a['depths'][i])))
            setattr(self, f'norm{i + 1}', nn.LayerNorm(dims[i], eps=1e-6))
        self.post_network = nn.ModuleList([ClassBlock(dims[3], a['heads'][3])])
        self.head = nn.Linear(dims[3], num_classes)
        if token_label:
            self.aux_head = nn.Linear(dims[3], num_classes)

    def stages(self, x):
        """The four stage maps as the dense backbone returns them (each after its norm)."""
        outs = []
        for i in range(4):
            x, H, W = getattr(self, f'patch_embed{i + 1}')(x)
            for blk in getattr(self, f'block{i + 1}'):
                x = blk(x, H, W)
            last = x
            x = getattr(self, f'norm{i + 1}')(x)
            x = x.transpose(1, 2).reshape(x.shape[0], -1, H, W)
            outs.append(x)
        return outs, last

    def dense(self, x):
        """The dense backbone's output: the four stage maps, each after its norm (norm4 included)."""
        return tuple(self.stages(x)[0])

    def forward(self, x):
        _, tokens = self.stages(x)
        x = self.post_network[0](torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1))
        x = self.norm4(x)
        out = self.head(x[:, 0])
        if hasattr(self, 'aux_head'):
            out = out + 0.5 * self.aux_head(x[:, 1:]).max(1)[0]
        return out
