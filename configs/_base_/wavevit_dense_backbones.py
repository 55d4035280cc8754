# The Wave-ViT backbones of the detection and segmentation configs, once per variant, with the ImageNet-1k
# checkpoints that initialise them, and the checkpoint hooks. Every config under configs/detection and
# configs/segmentation inherits this file and takes its backbone with
#     model = dict(backbone=dict(_delete_=True, **_base_.wavevit_s_backbone))   (replacing the base's ResNet)
# or, inheriting a Wave-ViT-S config, model = dict(backbone=_base_.wavevit_b_backbone).
#
# Checkpoints: the one place to change the paths (or override per run with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH). Make them from the official release with
#   python tools/model_converters/wavevit2mm.py wavevit_s.pth.tar checkpoints/wavevit-s_in1k.pth
#   python tools/model_converters/wavevit2mm.py wavevit_b.pth.tar checkpoints/wavevit-b_in1k.pth
# (an official file also works directly with prefix=''). Relative paths are resolved from the directory the tools
# are started in. A missing file stops the run when the model is initialised, naming the file and the converter.
wavevit_s_in1k = 'checkpoints/wavevit-s_in1k.pth'
wavevit_b_in1k = 'checkpoints/wavevit-b_in1k.pth'

# Four output maps (strides 4-32) with the final norms, drop path 0.1, and as in the official detection and
# segmentation backbones, the BatchNorms of the stem and the wavelet attention keep their ImageNet affine
# parameters (requires_grad=False; running statistics still update).
wavevit_s_backbone = dict(
    type='WaveViT',
    arch='s',
    out_indices=(0, 1, 2, 3),
    final_norm=True,
    drop_path_rate=0.1,
    norm_cfg=dict(type='BN', requires_grad=False),
    init_cfg=dict(type='Pretrained', checkpoint=wavevit_s_in1k, prefix='backbone.'))
wavevit_b_backbone = dict(
    wavevit_s_backbone, arch='b', init_cfg=dict(type='Pretrained', checkpoint=wavevit_b_in1k, prefix='backbone.'))

# Checkpoints and resume, also through the libraries' own tools (mim train/test mmdet / mmseg), see
# docs/checkpoints.md: every checkpoint the runs write loads with torch.load(weights_only=True)
# (SafeCheckpointHook), resume restores every random state (RandomStateHook), and a checkpoint that does not
# fit the model is refused by name (CheckpointFitHook). The configs also set
# default_hooks.checkpoint.type='AtomicCheckpointHook' (kill-safe saving), which a base cannot set for them.
custom_hooks = [dict(type='SafeCheckpointHook'), dict(type='RandomStateHook'), dict(type='CheckpointFitHook')]
