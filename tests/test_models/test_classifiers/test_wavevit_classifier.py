import pytest
import torch
import wavevit_mm  # noqa: F401
from wavevit_mm.models.ckpt_convert import official_to_mmpretrain
from wavevit_mm.testing import TINY_ARCH, TINY_REF, ReferenceWaveViT, build_classifier, randomize_norm_stats

SPEC_CLASSIFIER_PARAMS = {  # (with token-labeling aux head, without)
    's': (22_690_176, 22_241_176),
    'b': (33_516_128, 33_003_128),
    'l': (57_474_504, 56_961_504),
}


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


@pytest.mark.parametrize('arch', ['s', 'b', 'l'])
def test_classifier_param_counts(arch):
    with_aux, without = SPEC_CLASSIFIER_PARAMS[arch]
    assert sum(p.numel() for p in build_classifier(arch, True).parameters()) == with_aux
    assert sum(p.numel() for p in build_classifier(arch, False).parameters()) == without


@pytest.mark.parametrize('aux', [True, False])
def test_tensor_mode_equals_official_output(aux):
    ref = randomize_norm_stats(ReferenceWaveViT(TINY_REF, num_classes=7, token_label=aux)).eval()
    model = build_classifier(TINY_ARCH, aux, num_classes=7, in_channels=64, num_heads=4).eval()
    model.load_state_dict(official_to_mmpretrain(ref.state_dict()), strict=True)
    x = torch.randn(3, 3, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), ref(x), rtol=1e-4, atol=1e-4)


def test_predict_and_loss_modes():
    from mmpretrain.structures import DataSample
    model = build_classifier(TINY_ARCH, True, num_classes=5, in_channels=64, num_heads=4)
    x = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(i) for i in (1, 3)]
    model.train()
    losses = model(x, samples, mode='loss')
    assert losses['loss'].requires_grad and torch.isfinite(losses['loss'])
    model.eval()
    with torch.no_grad():
        preds = model(x, samples, mode='predict')
    assert preds[0].pred_score.shape == (5, )
    assert model.head.pre_logits(model.extract_feat(x)).shape == (2, 64)
