# Wave-ViT-L on ImageNet-1k, official recipe without token labeling (see wavevit-s_8xb128_in1k.py);
# drop path 0.3 and gradient clipping at norm 1.0.
_base_ = './wavevit-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='l', drop_path_rate=0.3),
    head=dict(in_channels=512, num_heads=16),
)
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
