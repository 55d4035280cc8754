# Wave-ViT-S on ImageNet-1k with token labeling: how the published top-1 (metafile.yml) was trained.
# Same recipe as wavevit-s_8xb128_in1k.py, plus: dense top-k label maps of an NFNet-F6 teacher (the files the
# TokenLabeling project publishes, see docs/classification.md) loaded per image and moved with the crop and the
# flip; the token-labeling auxiliary head; MixToken (Beta(1, 1) box on the 1/32 grid, mixed at the stem output);
# loss = soft-target CE on the class output (target: the teacher's label of the crop, smoothed 0.1)
# + 0.5 x soft-target CE on every token's output. Evaluation: head(cls) + 0.5 * max over tokens of aux_head.
# Official checkpoints (converted with tools/model_converters/wavevit2mm.py) evaluate with this config.
_base_ = './wavevit-s_8xb128_in1k.py'

token_label_root = 'data/imagenet/label_top5_train_nfnet'
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]

model = dict(
    type='TokenLabelImageClassifier',
    head=dict(aux_head=True, aux_weight=0.5),
    token_label_loss=dict(type='TokenLabelCrossEntropy', cls_weight=1.0, dense_weight=0.5),
    mix_token=True,
    mix_beta=1.0,
    label_smoothing=0.1,
    cls_target='token_label',
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadTokenLabel', label_root=token_label_root, num_classes=1000),
    dict(type='TokenLabelRandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
