# RetinaNet + Wave-ViT-B + FPN, COCO, 1x schedule, single scale, 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-B RetinaNet 1x box AP on COCO val2017 (the number:
# metafile.yml / README.md here).
# Same recipe as the S config (AdamW lr 1e-4, wd 1e-4, drop path 0.1); the official B run used a static
# fp16 loss scale of 512 instead of the dynamic one.
_base_ = './retinanet_wavevit-s_fpn_1x_coco.py'

model = dict(
    backbone=_base_.wavevit_b_backbone,
    neck=dict(in_channels=[64, 128, 320, 512]))
optim_wrapper = dict(loss_scale=512.)
