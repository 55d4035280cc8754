"""The backbone compiles with torch.compile and exports to ONNX, and both give PyTorch's outputs.

Both trace the eager model in inference (where the MLP's GELU works in place) and in training.

``torch.compile`` uses the ``aot_eager`` backend: it runs the same Dynamo graph capture (``fullgraph=True``,
so any graph break fails) and AOT-autograd tracing of forward and backward as ``inductor``, without the C++
code generation, which takes several minutes for this model on a 2-core CPU (measured: about 4.5 minutes
for TINY_ARCH at 64 x 64 on the shared test machine).
"""
import onnx  # requirements/tests.txt (with onnxscript, which the exporter needs)
import onnxruntime as ort
import pytest
import torch
from wavevit_mm.testing import TINY_ARCH, randomize_norm_stats

from wavevit_mm import WaveViT


@pytest.fixture
def tiny_model():
    model = WaveViT(TINY_ARCH, drop_path_rate=0.)
    model.init_weights()
    return randomize_norm_stats(model)


def test_torch_compile_same_outputs_and_gradients(tiny_model):
    torch._dynamo.reset()
    compiled = torch.compile(tiny_model, backend='aot_eager', fullgraph=True)
    x = torch.randn(2, 3, 64, 96)
    tiny_model.eval()
    with torch.no_grad():
        expected = tiny_model(x)
        outs = compiled(x)
    assert len(outs) == 4
    for o, e in zip(outs, expected):
        assert o.shape == e.shape
        torch.testing.assert_close(o, e, rtol=1e-5, atol=1e-5)

    # training mode: batch statistics, and the gradients of the compiled backward
    tiny_model.train()
    grads = []
    for model in (tiny_model, compiled):
        tiny_model.zero_grad(set_to_none=True)
        sum(o.square().mean() for o in model(x)).backward()
        grads.append({n: p.grad.clone() for n, p in tiny_model.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5, msg=name)


def test_onnx_export_matches_onnxruntime(tiny_model, tmp_path):
    model = tiny_model.eval()
    path = tmp_path / 'wavevit.onnx'
    x = torch.randn(2, 3, 64, 64)
    batch = torch.export.Dim('batch', min=1, max=64)
    torch.onnx.export(model, (x, ), str(path), opset_version=18, dynamo=True, input_names=['images'],
                      dynamic_shapes={'x': {0: batch}})

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')) >= 17
    assert all(node.domain in ('', 'ai.onnx') for node in proto.graph.node), \
        sorted({node.domain for node in proto.graph.node})

    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for batch_size in (2, 3):  # the batch dimension is dynamic
        images = torch.randn(batch_size, 3, 64, 64)
        with torch.no_grad():
            expected = model(images)
        outs = session.run(None, {'images': images.numpy()})
        assert len(outs) == 4
        for o, e in zip(outs, expected):
            assert tuple(o.shape) == tuple(e.shape)
            torch.testing.assert_close(torch.from_numpy(o), e, rtol=1e-4, atol=1e-4)
