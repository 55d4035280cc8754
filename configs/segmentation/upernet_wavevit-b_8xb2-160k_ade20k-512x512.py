# UperNet + Wave-ViT-B on ADE20K, 160k iterations, 8 GPUs x 2 images, crop 512x512, fp16.
# Reproduces the published Wave-ViT-B UperNet result: 51.5 mIoU (single-scale) on ADE20K val.
#
# Same recipe as the Wave-ViT-S config this file inherits (see there), with the B backbone and drop path 0.3.
_base_ = './upernet_wavevit-s_8xb2-160k_ade20k-512x512.py'

# the converted ImageNet-1k checkpoint (python tools/model_converters/wavevit2mm.py wavevit_b.pth.tar ...)
checkpoint_file = 'checkpoints/wavevit-b_in1k.pth'

model = dict(
    backbone=dict(
        arch='b',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
