# Wave-ViT-L on ImageNet-1k with token labeling (published top-1: metafile.yml); see
# wavevit-s_8xb128_in1k-tokenlabel.py.
# Drop path 0.3 and gradient clipping at norm 1.0.
_base_ = './wavevit-s_8xb128_in1k-tokenlabel.py'

model = dict(
    backbone=dict(arch='l', drop_path_rate=0.3),
    head=dict(in_channels=512, num_heads=16),
)
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
