# Wave-ViT-B on ImageNet-1k with token labeling (published top-1: metafile.yml); see
# wavevit-s_8xb128_in1k-tokenlabel.py.
_base_ = './wavevit-s_8xb128_in1k-tokenlabel.py'

model = dict(
    backbone=dict(arch='b', drop_path_rate=0.1),
    head=dict(in_channels=512, num_heads=16),
)
