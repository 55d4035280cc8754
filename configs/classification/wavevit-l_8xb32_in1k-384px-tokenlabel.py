# Wave-ViT-L fine-tuned at 384 x 384 from its 224 token-labeling checkpoint (published top-1: metafile.yml); the recipe
# is wavevit-s_8xb32_in1k-384px-tokenlabel.py's, with the L model and the gradient clipping of
# wavevit-l_8xb128_in1k.py.
_base_ = './wavevit-s_8xb32_in1k-384px-tokenlabel.py'

pretrained_224 = 'checkpoints/wavevit-l_in1k.pth'
model = dict(
    backbone=dict(arch='l', drop_path_rate=0.3),
    head=dict(in_channels=512, num_heads=16),
    init_cfg=dict(type='Pretrained', checkpoint=pretrained_224),
)
optim_wrapper = dict(clip_grad=dict(max_norm=1.0, norm_type=2))
