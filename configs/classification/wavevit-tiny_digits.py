# A small Wave-ViT on scikit-learn's handwritten digits (8 x 8 scans of 0-9, upscaled to 32 x 32 RGB), written as
# an ImageNet-style folder tree by tools/quickstart.py: <data_root>/{train,val}/<digit>/*.png. It is the
# ImageNet recipe (wavevit-s_8xb128_in1k.py: AdamW, no decay on norms/biases, warmup + cosine, label smoothing,
# WaveViTClsHead) scaled down so it trains on a laptop CPU in minutes: a 4-stage Wave-ViT (16-channel stem,
# stages of 32-96 channels), 32 x 32 inputs, mild crops and no flips (a mirrored digit is another symbol),
# lr 2e-3 for batch 32.
_base_ = './wavevit-s_8xb128_in1k.py'

data_root = 'data/digits'
num_classes = 10

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, stem_channels=16, embed_dims=[32, 48, 64, 96], num_heads=[1, 2, 2, 3],
                  depths=[1, 1, 2, 1], mlp_ratios=[4, 4, 4, 4], sr_ratios=[4, 2, 1, 1]),
        drop_path_rate=0.0),
    head=dict(num_classes=num_classes, in_channels=96, num_heads=3,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
)
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.7, 1.0), aspect_ratio_range=(0.85, 1.18),
         backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=32, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', with_label=True,
                 pipeline=train_pipeline, _delete_=True),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', with_label=True,
                 pipeline=test_pipeline, _delete_=True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 6
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=3)
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1, save_best=None),
)
