# Wave-ViT-S on ImageNet-1k, the official recipe without token labeling (plain labels, label smoothing 0.1).
# The published top-1 (metafile.yml) was trained with token labeling: see wavevit-s_8xb128_in1k-tokenlabel.py.
# 8 GPUs x 128 images = 1024; AdamW lr 1e-3 (= 5e-4 * 1024 / 512), wd 0.05, no decay on norms and biases,
# 5 linear warmup epochs from 1e-6, cosine to 1e-5, 310 epochs; RandAugment m9 mstd0.5, RandomResizedCrop
# (bicubic), flip, random erasing 0.25; evaluation: bicubic resize of the short side to 233 (= 224 / 0.96),
# center crop 224.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['wavevit_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='WaveViT', arch='s', out_indices=(3, ), final_norm=False, drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='WaveViTClsHead',
        num_classes=1000,
        in_channels=448,
        num_heads=14,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
    ),
)

# crop ratio 0.96 at 224
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=233, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05, eps=1e-8))
param_scheduler = [
    # 1e-3 * 1e-3 = 1e-6 at the start, per iteration
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=310),
]
train_cfg = dict(by_epoch=True, max_epochs=310, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
# Checkpoints and resume, also through `mim train mmpretrain` (docs/checkpoints.md): kill-safe saving
# (AtomicCheckpointHook), checkpoints that torch.load(weights_only=True) reads (SafeCheckpointHook), every random
# state restored on resume (RandomStateHook), a checkpoint that does not fit the model refused by name
# (CheckpointFitHook)
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='RandomStateHook'), dict(type='CheckpointFitHook')]
