# GFL + Wave-ViT-S + FPN, COCO, "3x ms": 36 epochs (lr steps at 27 and 33), DETR-style multi-scale
# training (480-800 with the random-crop branch, long side <= 1200), 8 GPUs x 2 images, fp16.
# Reproduces the published Wave-ViT-S GFL 3x box AP on COCO val2017 (the number:
# metafile.yml / README.md here).
#
# Recipe of the official mmdet 2.x config: mmdet's GFL head (quality focal loss, distribution focal loss
# with reg_max 16, GIoU loss, ATSS assigner top-9), FPN from the second stage with P6/P7 from its outputs
# (start_level=1, add_extra_convs='on_output'); AdamW lr 1e-4, weight decay 0.05 with none on parameters
# whose name contains "norm", linear warmup over 500 iterations, backbone drop path 0.1, fp16 with a static
# loss scale of 512. Unlike the other 3x configs, the official GFL run capped the long side of its training
# scales at 1200 (test: 1333 x 800); kept here.
_base_ = [
    'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    '../_base_/wavevit_dense_backbones.py',
]
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, **_base_.wavevit_s_backbone),
    neck=dict(in_channels=[64, 128, 320, 448], start_level=1, add_extra_convs='on_output', num_outs=5))

# DETR-style multi-scale augmentation: either resize (short side 480, 512, ..., 800; long side <= 1200), or
# resize (400/500/600) -> random crop (384-600) -> resize (480-800)
ms_scales = [(short, 1200) for short in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(400, 1200), (500, 1200), (600, 1200)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=ms_scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(type='CheckedCocoDataset', pipeline=train_pipeline))

max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(
    type='AmpOptimWrapper',  # fp16 on GPU, static loss scale 512 as the official run
    loss_scale=512.,
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

# the learning rate above is for 16 images per iteration (8 GPUs x 2); --auto-scale-lr rescales it
auto_scale_lr = dict(enable=False, base_batch_size=16)

# kill-safe checkpoint saving (docs/checkpoints.md), and a COCO dataset that checks its annotation file and names
# what it cannot use (wavevit_mm/datasets/coco.py)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset'))
test_dataloader = val_dataloader
