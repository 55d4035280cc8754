# UperNet + Wave-ViT-B on ADE20K, 160k iterations, 8 GPUs x 2 images, crop 512x512, fp16.
# Reproduces the published Wave-ViT-B UperNet single-scale mIoU on ADE20K val (the number:
# metafile.yml / README.md here).
#
# Same recipe as the Wave-ViT-S config this file inherits (see there), with the B backbone and drop path 0.3.
_base_ = './upernet_wavevit-s_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(_base_.wavevit_b_backbone, drop_path_rate=0.3),
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
