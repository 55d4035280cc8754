# Wave-ViT-B on ImageNet-1k, official recipe without token labeling (see wavevit-s_8xb128_in1k.py).
_base_ = './wavevit-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.1),
    head=dict(in_channels=512, num_heads=16),
)
