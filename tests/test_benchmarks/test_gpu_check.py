"""``benchmarks/gpu_check.py --dry-run`` (the GPU check's code on the CPU at toy sizes) and the benchmarks' import
of the official Wave-ViT code (stand-ins for timm / pywt, ``sys.modules`` restored afterwards).

The scripts run as subprocesses, as users run them (``benchmarks/`` is not a package)."""
import json
import math
import os.path as osp
import subprocess
import sys
import textwrap

from wavevit_mm.utils.paths import PROJECT_ROOT

BENCHMARKS = osp.join(PROJECT_ROOT, 'benchmarks')


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / 'gpu_check.json'
    proc = _run([sys.executable, osp.join(BENCHMARKS, 'gpu_check.py'), '--dry-run', '--out', str(out)],
                cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '\r' not in proc.stdout  # one line per step, readable in a log file
    assert '5 of 5 checks passed' in proc.stdout
    report = json.loads(out.read_text())
    assert report['dry_run'] and report['failed'] == []
    checks = report['checks']
    assert set(checks) == {'train_classification', 'train_detection', 'train_segmentation', 'syncbn', 'backbone'}
    for task in ('classification', 'detection', 'segmentation'):
        losses = checks[f'train_{task}']['float32']['losses']
        assert len(losses) == 3 and all(map(math.isfinite, losses)) and min(losses[-2:]) < losses[0], task
    assert checks['syncbn']['backend'] == 'gloo' and checks['syncbn']['world_size'] == 1
    bench = checks['backbone']
    assert bench['channels_last'] and bench['train_dtype'] == 'bf16' and bench['batch'] == 1
    results = bench['results']
    assert set(results) == {'wavevit-s-dense', 'swin-t', 'pvtv2-b2'}
    for name, modes in results.items():
        expected = {'fp32', 'bf16', 'train'} | ({'train_cp'} if name != 'pvtv2-b2' else set())  # no with_cp
        assert set(modes) == expected, name
        for r in modes.values():
            assert r['images_per_s'] > 0 and r['peak_mb'] > 0 and len(r['times_s']) == 1
    assert set(bench['ratios']) == {'swin-t'}
    # multiply-adds counted on the meta device, attention included: about 4.58 G at 224, scaled to 64 x 64
    assert 0.8 < bench['gmacs_per_image']['wavevit-s-dense'] / (4.58 * (64 / 224)**2) < 1.2


def test_gpu_check_needs_a_gpu_without_dry_run(tmp_path):
    proc = _run([sys.executable, osp.join(BENCHMARKS, 'gpu_check.py'), '--out', str(tmp_path / 'x.json')])
    assert proc.returncode != 0 and 'needs a CUDA GPU' in proc.stderr and '--dry-run' in proc.stderr


def test_official_source_errors(tmp_path):
    proc = _run([sys.executable, osp.join(BENCHMARKS, 'bench_backbone.py'), '--official-src', str(tmp_path)])
    assert proc.returncode != 0
    assert f'--official-src {tmp_path}: no wavevit.py and torch_wavelets.py' in proc.stderr
    assert 'github.com/YehLi/ImageNetModel' in proc.stderr


def test_official_import_stand_ins_are_temporary(tmp_path):
    """The import sees timm 0.4.5's and pywt's names (and np.int); afterwards sys.modules is as before. The
    files here only import what the official ones import: no official code is part of the project."""
    src = tmp_path / 'ImageNetModel' / 'classification'
    src.mkdir(parents=True)
    (src / 'torch_wavelets.py').write_text(textwrap.dedent('''\
        import pywt
        HAAR = pywt.Wavelet('haar')
        '''))
    (src / 'wavevit.py').write_text(textwrap.dedent('''\
        import numpy as np
        from timm.models.layers import DropPath, to_2tuple, trunc_normal_
        from timm.models.registry import register_model
        from timm.models.vision_transformer import _cfg
        from torch_wavelets import HAAR

        @register_model
        def wavevit_s(**kwargs):
            return dict(drop=DropPath(0.1), pair=to_2tuple(3), cfg=_cfg(), haar=HAAR, int=np.int(2.7),
                        init=trunc_normal_)
        '''))
    code = textwrap.dedent(f'''\
        import sys
        before = {{k for k in sys.modules if k.split('.')[0] in ('timm', 'pywt', 'wavevit', 'torch_wavelets')}}
        import official_wavevit
        mod = official_wavevit.import_official({str(tmp_path / 'ImageNetModel')!r})
        out = mod.wavevit_s()
        assert out['pair'] == (3, 3) and out['int'] == 2 and out['cfg'] == {{'url': ''}}
        r = 2 ** -0.5
        assert max(abs(a - b) for a, b in zip(out['haar'].dec_lo + out['haar'].dec_hi, [r, r, -r, r])) < 1e-12
        after = {{k for k in sys.modules if k.split('.')[0] in ('timm', 'pywt', 'wavevit', 'torch_wavelets')}}
        assert before == after == set(), after
        import numpy
        assert not hasattr(numpy, 'int')  # numpy itself is untouched
        print('ok')
        ''')
    proc = _run([sys.executable, '-c', code], cwd=BENCHMARKS)
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]
