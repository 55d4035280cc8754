# A tiny mmpretrain classification config for the launch, resume and checkpoint-safety tests
# (tests/test_tools/test_launch_*.py, test_checkpoint_safety.py, tests/test_engine/test_dist.py).
#
# TINY_ARCH-size Wave-ViT, 4 classes of 32x32 images in the ImageNet folder layout (data_root/train/<class>/*.png,
# data_root/val/<class>/*.png; the tests generate them), deterministic settings.
#
# It is chosen so that N processes with batch B each compute exactly what 1 process with batch N*B computes:
# - no random augmentation (fixed resize) and no drop path / dropout: nothing depends on per-process RNG streams;
# - the backbone's BatchNorm layers are kept in eval mode (norm_eval=True): their running statistics are fixed,
#   their affine weights still train. In train mode BN would normalise each process's batch with that batch's
#   statistics (SyncBN, which would share them, needs CUDA), which is a genuinely different computation;
# - a mean loss over the batch and DDP's gradient average give the same gradient as one big batch; the
#   DefaultSampler (fixed seed) hands the processes interleaved slices of the same permutation, so every step
#   sees the same images overall; 16 images divide evenly, so there is no padding.
# data_root comes from the WAVEVIT_TINY_DATA environment variable.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['wavevit_mm', 'wavevit_mm.testing.hooks'], allow_failed_imports=False)

data_root = '{{$WAVEVIT_TINY_DATA:data/tiny_imagenet}}'
batch_size = 8  # per process; the tests pass 4 for 2 processes
num_classes = 4

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='WaveViT',
        arch=dict(stem_channels=8, embed_dims=[16, 32, 48, 64], num_heads=[1, 2, 3, 4], depths=[1, 1, 2, 1],
                  mlp_ratios=[8, 8, 4, 4], sr_ratios=[4, 2, 1, 1]),
        out_indices=(3, ), final_norm=False, drop_path_rate=0., norm_eval=True),
    head=dict(type='WaveViTClsHead', num_classes=num_classes, in_channels=64, num_heads=4,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))

data_preprocessor = dict(num_classes=num_classes, mean=[127.5, 127.5, 127.5], std=[64., 64., 64.], to_rgb=True)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(32, 32)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0))
val_dataloader = dict(
    batch_size=batch_size, num_workers=0,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, by_epoch=True, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=3)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=-1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# every process writes its final weights (rank<r>_final.pth), so the tests can compare the ranks;
# WAVEVIT_KILL_AT_ITER=N makes the run SIGKILL itself after iteration N (the resume test)
kill_at_iter = int('{{$WAVEVIT_KILL_AT_ITER:0}}')
custom_hooks = [dict(type='DumpFinalWeightsHook')]
if kill_at_iter > 0:
    custom_hooks.append(dict(type='KillAfterIterHook', kill_at_iter=kill_at_iter))

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0, deterministic=True)
log_level = 'INFO'
load_from = None
resume = False
