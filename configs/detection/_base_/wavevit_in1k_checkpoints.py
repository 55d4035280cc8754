# Where the detection configs find the ImageNet-1k Wave-ViT weights that initialise their backbones: the
# one place to change the paths (or override per run with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH).
#
# Make them from the official release with
#   python tools/model_converters/wavevit2mm.py wavevit_s.pth.tar checkpoints/wavevit-s_in1k.pth
#   python tools/model_converters/wavevit2mm.py wavevit_b.pth.tar checkpoints/wavevit-b_in1k.pth
# (an official file also works directly with prefix=''). Relative paths are resolved from the directory
# the tools are started in. A missing file stops the run when the model is initialised, with
# "FileNotFoundError: checkpoint file not found: PATH".
wavevit_s_in1k = 'checkpoints/wavevit-s_in1k.pth'
wavevit_b_in1k = 'checkpoints/wavevit-b_in1k.pth'
