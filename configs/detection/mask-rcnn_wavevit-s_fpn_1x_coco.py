# Mask R-CNN + Wave-ViT-S + FPN, COCO, 1x schedule (12 epochs, lr steps at 8 and 11), single scale
# (1333 x 800), 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-S Mask R-CNN 1x box and mask AP on COCO val2017 (the numbers:
# metafile.yml / README.md here).
#
# Recipe of the official mmdet 2.x config: AdamW lr 2e-4, weight decay 1e-4, linear warmup over 500
# iterations, backbone drop path 0.1, FPN on all four stages, fp16 with a static loss scale of 512. One
# change: no weight decay on parameters whose name contains "norm" (as the official 3x runs; this 1x run
# decayed them too, with 1e-4 x lr per step: a negligible difference).
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/wavevit_dense_backbones.py',
]
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, **_base_.wavevit_s_backbone),
    neck=dict(in_channels=[64, 128, 320, 448]))

optim_wrapper = dict(
    type='AmpOptimWrapper',  # fp16 on GPU
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

# the learning rate above is for 16 images per iteration (8 GPUs x 2); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=16)

# kill-safe checkpoint saving (docs/checkpoints.md), and a COCO dataset that checks its annotation file and names
# what it cannot use (wavevit_mm/datasets/coco.py)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
