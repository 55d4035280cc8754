# Cascade Mask R-CNN + Wave-ViT-S + FPN, COCO, "3x ms": 36 epochs (lr steps at 27 and 33), DETR-style
# multi-scale training (480-800 with the random-crop branch), 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-S Cascade Mask R-CNN 3x box AP on COCO val2017 (the number:
# metafile.yml / README.md here).
#
# Recipe of the official mmdet 2.x config: three cascade stages with "4conv1fc" box heads (four 3x3 convs
# with SyncBN, one fc of 1024), class-specific regression on decoded boxes with GIoU loss (weight 10);
# AdamW lr 1e-4, weight decay 0.05 with none on parameters whose name contains "norm", linear warmup over
# 500 iterations, backbone drop path 0.1, fp16 with a static loss scale of 512. mmdet's ConvNeXt
# "4conv1fc-giou_amp-ms-crop-3x" config has exactly these heads, the multi-scale pipeline and the 36-epoch
# schedule; this file swaps in the backbone, the 500-iteration warmup and a plain AdamW (no layer-wise lr
# decay). SyncBN in the heads needs CUDA: tools/train.py turns it into BN on a machine without a GPU.
_base_ = [
    'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
    '../_base_/wavevit_dense_backbones.py',
]
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)

checkpoint_file = _base_.wavevit_s_in1k  # (the ConvNeXt base's variable, set for clarity)
model = dict(
    backbone=dict(_delete_=True, **_base_.wavevit_s_backbone),
    neck=dict(in_channels=[64, 128, 320, 448]))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',  # fp16 on GPU, static loss scale 512 as the official run
    loss_scale=512.,
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

# the learning rate above is for 16 images per iteration (8 GPUs x 2); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=16)

# kill-safe checkpoint saving (docs/checkpoints.md), and a COCO dataset that checks its annotation file and names
# what it cannot use (wavevit_mm/datasets/coco.py)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
