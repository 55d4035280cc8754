# UperNet + Wave-ViT-S on ADE20K, 160k iterations, 8 GPUs x 2 images, crop 512x512, fp16.
# Reproduces the published Wave-ViT-S UperNet single-scale mIoU on ADE20K val (the number:
# metafile.yml / README.md here).
#
# Recipe (the official Wave-ViT ADE20K setting): UperNet head with 512 channels, FCN auxiliary head on
# stage 3 (in_index=2) with loss weight 0.4, AdamW lr 6e-5, betas (0.9, 0.999), weight decay 0.01 with no
# decay on parameters whose name contains "norm", 1500 linear warmup iterations then poly (power 1.0) decay
# to 0, fp16 (static loss scale 512), drop path 0.1, backbone initialised from the ImageNet-1k checkpoint
# converted by tools/model_converters/wavevit2mm.py (../_base_/wavevit_dense_backbones.py).
#
# Test settings: single scale (short side 512, long side <= 2048, whole image) via test_pipeline; multi-scale
# (0.5-1.75 x that scale) + flip via tta_pipeline / tta_model (mmseg's SegTTAModel), used by mmseg's
# `tools/test.py --tta`, e.g. `mim test mmseg CONFIG --checkpoint CKPT --tta` (docs/segmentation.md).
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/wavevit_dense_backbones.py',
]
custom_imports = dict(imports=['wavevit_mm', 'wavevit_mm.datasets.seg_transforms'], allow_failed_imports=False)

num_classes = 150
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(_delete_=True, **_base_.wavevit_s_backbone),
    decode_head=dict(in_channels=[64, 128, 320, 448], channels=512, num_classes=num_classes),
    auxiliary_head=dict(in_channels=320, in_index=2, num_classes=num_classes,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    test_cfg=dict(mode='whole'))

# data: mmseg's ADE20K pipelines with label maps read by LoadSegAnnotations (mmseg's LoadAnnotations reading
# them at their real bit depth and checking their size against the image, naming the file) and a label check
# right after it that names a label file holding class indices outside [0, 150) (other than 255) instead of
# failing later inside the loss
label_check = dict(type='CheckSegLabels', num_classes=num_classes, ignore_index=255)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    label_check,
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadSegAnnotations', reduce_zero_label=True),
    label_check,
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            # scales relative to the single-scale setting (2048, 512), as in mmseg 0.x's MultiScaleFlipAug
            # (the official evaluation), rather than relative to the raw image size
            [dict(type='Resize', scale=(int(2048 * r), int(512 * r)), keep_ratio=True) for r in img_ratios],
            [dict(type='RandomFlip', prob=0., direction='horizontal'),
             dict(type='RandomFlip', prob=1., direction='horizontal')],
            [dict(type='LoadSegAnnotations')],
            [label_check],
            [dict(type='PackSegInputs')],
        ]),
]
tta_model = dict(type='SegTTAModel')
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# kill-safe checkpoint saving (docs/checkpoints.md; the other checkpoint hooks come with the _base_ file)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))

# optimizer: AdamW, fp16 through AmpOptimWrapper (mmengine builds it only with a GPU; for a CPU run see
# docs/segmentation.md)
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale=512.,
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))

# learning policy: 1500 linear warmup iterations from lr * 1e-6, then poly (power 1) to 0 at 160k
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)

# the total batch size the learning rate is set for (tools/train.py --auto-scale-lr)
auto_scale_lr = dict(enable=False, base_batch_size=16)
