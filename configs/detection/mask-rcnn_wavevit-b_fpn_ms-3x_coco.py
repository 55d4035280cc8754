# Mask R-CNN + Wave-ViT-B + FPN, COCO, 3x multi-scale (36 epochs, DETR-style 480-800 with the crop branch),
# 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-B Mask R-CNN 3x box and mask AP on COCO val2017 (from the paper; the
# numbers: metafile.yml / README.md here). Same recipe as the S config, only the backbone differs.
_base_ = './mask-rcnn_wavevit-s_fpn_ms-3x_coco.py'

model = dict(
    backbone=_base_.wavevit_b_backbone,
    neck=dict(in_channels=[64, 128, 320, 512]))
