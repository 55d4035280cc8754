"""Unit tests of what tools/train.py and tools/test.py add to mmengine (end-to-end runs are in other files)."""
import pytest
import torch
from mmengine.config import Config

import wavevit_mm  # noqa: F401
from wavevit_mm.engine import AutocastOptimWrapper
from wavevit_mm.engine.hooks.safe_checkpoint_hook import SafeCheckpointHook
from wavevit_mm.engine.launch import adapt_to_device, set_amp, set_tta


def test_autocast_optim_wrapper_runs_forward_in_bf16():
    model = torch.nn.Linear(4, 2)
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().sum())
    assert model.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="'bfloat16' or 'float16'"):
        AutocastOptimWrapper(dtype='int8', optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU adaptations apply without CUDA only')
def test_adapt_to_device_on_cpu():
    cfg = Config(dict(
        model=dict(type='X', backbone=dict(norm_cfg=dict(type='SyncBN')),
                   heads=[dict(norm_cfg=dict(type='SyncBN', requires_grad=True))]),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
        launcher='pytorch'))
    set_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'
    cfg = adapt_to_device(cfg)
    assert cfg.model.backbone.norm_cfg.type == 'BN' and cfg.model.heads[0].norm_cfg.type == 'BN'
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert [h['type'] for h in cfg.custom_hooks] == ['SafeCheckpointHook']
    assert [h['type'] for h in adapt_to_device(cfg).custom_hooks] == ['SafeCheckpointHook']  # not twice
    # a detector whose RPN / RoI heads train through mmcv's float32-only CPU NMS / RoIAlign stays float32
    two_stage = Config(dict(model=dict(type='MaskRCNN', rpn_head=dict(), roi_head=dict()),
                            optim_wrapper=dict(type='AmpOptimWrapper', loss_scale=512., optimizer=dict(type='SGD'))))
    assert adapt_to_device(two_stage).optim_wrapper == dict(type='OptimWrapper', optimizer=dict(type='SGD'))


def test_set_tta():
    cfg = Config(dict(model=dict(type='M'), tta_model=dict(type='SegTTAModel'), tta_pipeline=[dict(type='T')],
                      test_dataloader=dict(dataset=dict(pipeline=[dict(type='P')]))))
    set_tta(cfg)
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.type == 'M'
    assert cfg.test_dataloader.dataset.pipeline == [dict(type='T')]
    with pytest.raises(KeyError, match=r"--tta needs \['tta_model', 'tta_pipeline'\]"):
        set_tta(Config(dict(model=dict(type='M'))))


def test_safe_checkpoint_round_trip(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('test_safe_checkpoint_round_trip')
    for i in range(5):
        hub.update_scalar('train/loss', float(i))
    hub.update_info('iter', np.int64(5), resumed=True)
    checkpoint = {'meta': {'seed': np.int64(3), 'epoch': 1, 'dataset_meta': {'classes': ('a', 'b')}},
                  'state_dict': {'w': torch.ones(2)}, 'message_hub': hub.state_dict()}
    path = tmp_path / 'ckpt.pth'
    torch.save(checkpoint, path)
    with pytest.raises(Exception, match='weights_only'):  # what mmengine writes on its own
        torch.load(path, weights_only=True)
    hook = SafeCheckpointHook()
    hook.before_save_checkpoint(None, checkpoint)
    torch.save(checkpoint, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['meta']['seed'] == 3 and loaded['meta']['dataset_meta']['classes'] == ('a', 'b')
    hook.after_load_checkpoint(None, loaded)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 2.0 and buffer.current() == 4.0
    restored = MessageHub.get_instance('test_safe_checkpoint_round_trip_restored')
    restored.load_state_dict(loaded['message_hub'])
    assert restored.get_info('iter') == 5
