# Mask R-CNN + Wave-ViT-S + FPN, COCO, "3x ms": 36 epochs (lr steps at 27 and 33), DETR-style multi-scale
# training (short side 480-800, long side <= 1333, or resize 400-600 -> random crop 384-600 -> resize
# 480-800), 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-S Mask R-CNN 3x box and mask AP on COCO val2017 (the numbers:
# metafile.yml / README.md here; they are from the paper: the official release has no config for this run).
#
# Recipe: the 3x multi-scale setting of the official ATSS / GFL / Cascade Mask R-CNN configs (AdamW lr 1e-4,
# weight decay 0.05 with none on parameters whose name contains "norm", linear warmup over 500 iterations,
# drop path 0.1, fp16 with a static loss scale of 512), which mmdet's Swin Mask R-CNN "amp-ms-crop-3x"
# config also uses: it provides the pipeline and the schedule; this file swaps in the backbone, the
# 500-iteration warmup and the optimizer settings.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
    '../_base_/wavevit_dense_backbones.py',
]
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)

pretrained = None  # the Swin base's ImageNet URL, unused: the backbone's init_cfg names the checkpoint
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
    type='AmpOptimWrapper',  # fp16 on GPU, static loss scale 512 as the official 3x runs
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, custom_keys={'norm': dict(decay_mult=0.)}))

# the learning rate above is for 16 images per iteration (8 GPUs x 2); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=16)

# kill-safe checkpoint saving (docs/checkpoints.md), and a COCO dataset that checks its annotation file and names
# what it cannot use (wavevit_mm/datasets/coco.py)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
