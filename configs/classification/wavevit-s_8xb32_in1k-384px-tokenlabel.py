# Wave-ViT-S fine-tuned at 384 x 384 from the 224 token-labeling checkpoint (published 384 results of S / B / L:
# metafile.yml). The official release gives no 384 recipe; this one follows the token-labeling
# (LV-ViT) 384 fine-tuning that Wave-ViT's training code descends from: 30 epochs, batch 8 x 32, AdamW with a
# constant lr 5e-6 and weight decay 1e-8, no warmup, token labeling + MixToken as at 224 (targets are resampled
# from the same label maps to the 12 x 12 output grid), same drop path and clipping as the 224 model.
# Evaluation keeps the official crop ratio 0.96: short side 400, center crop 384.
_base_ = './wavevit-s_8xb128_in1k-tokenlabel.py'

# the converted 224 checkpoint (tools/model_converters/wavevit2mm.py, or a work_dir checkpoint of the 224 run)
pretrained_224 = 'checkpoints/wavevit-s_in1k.pth'
model = dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained_224))

bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadTokenLabel', label_root={{_base_.token_label_root}}, num_classes=1000),
    dict(type='TokenLabelRandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='TokenLabelRandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs', algorithm_keys=('token_label', 'token_label_box')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=400, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=384),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=5e-6, weight_decay=1e-8))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=30)]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
auto_scale_lr = dict(base_batch_size=256)
