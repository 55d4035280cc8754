"""The analysis tools (FLOPs, benchmark) and the model index, each run as users run them (subprocesses);
vis_wavelets and plot_curves are tested in test_visualization.py.

To keep the wall time low, every tool invocation of this module starts at once (module fixture) and the
tests wait for the ones they check; each is small (meta-device FLOPs counting, a tiny model, 64-pixel
images, half a second of timed steps).
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

import pytest
import torch

from wavevit_mm.utils.paths import PROJECT_ROOT as REPO_ROOT, load_script
from wavevit_mm.testing import TINY_CLS_CONFIG
from wavevit_mm.testing.metafiles import indexed_models, model_entry, published

PY = sys.executable
TOOLS = osp.join(REPO_ROOT, 'tools')
CLS_CONFIGS = osp.join(REPO_ROOT, 'configs', 'classification')

#: the paper's numbers (Yao et al., ECCV 2022, and the official release's READMEs), written down here once more
#: only as the oracle the metafiles, the one source the project reads them from, are checked against
PAPER = {
    's': dict(flops224=4.7, flops384=15.1, params=22_690_176),
    'b': dict(flops224=7.2, flops384=23.4, params=33_516_128),
    'l': dict(flops224=14.8, flops384=47.5, params=57_474_504),
}
PAPER_RESULTS = {
    'wavevit-s_8xb128_in1k-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 83.9}},
    'wavevit-b_8xb128_in1k-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 84.8}},
    'wavevit-l_8xb128_in1k-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 85.5}},
    'wavevit-s_8xb32_in1k-384px-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 85.0}},
    'wavevit-b_8xb32_in1k-384px-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 85.6}},
    'wavevit-l_8xb32_in1k-384px-tokenlabel': {'ImageNet-1k': {'Top 1 Accuracy': 86.3}},
    'retinanet_wavevit-s_fpn_1x_coco': {'COCO': {'box AP': 45.8}},
    'retinanet_wavevit-b_fpn_1x_coco': {'COCO': {'box AP': 47.2}},
    'mask-rcnn_wavevit-s_fpn_1x_coco': {'COCO': {'box AP': 46.6, 'mask AP': 42.4}},
    'mask-rcnn_wavevit-b_fpn_1x_coco': {'COCO': {'box AP': 47.6, 'mask AP': 43.0}},
    'mask-rcnn_wavevit-s_fpn_ms-3x_coco': {'COCO': {'box AP': 48.1, 'mask AP': 42.7}},
    'mask-rcnn_wavevit-b_fpn_ms-3x_coco': {'COCO': {'box AP': 49.2, 'mask AP': 43.2}},
    'cascade-mask-rcnn_wavevit-s_fpn_ms-3x_coco': {'COCO': {'box AP': 52.1}},
    'atss_wavevit-s_fpn_ms-3x_coco': {'COCO': {'box AP': 50.7}},
    'gfl_wavevit-s_fpn_ms-3x_coco': {'COCO': {'box AP': 50.9}},
    'sparse-rcnn_wavevit-s_fpn_300-proposals_ms-3x_coco': {'COCO': {'box AP': 50.7}},
    'upernet_wavevit-s_8xb2-160k_ade20k-512x512': {'ADE20K': {'mIoU': 49.6}},
    'upernet_wavevit-b_8xb2-160k_ade20k-512x512': {'ADE20K': {'mIoU': 51.5}},
}


def paper(arch: str) -> dict:
    """The paper's FLOPs (G, multiply-adds) at 224 / 384 and the official classifier's exact parameter count, as
    the metafile states them (token-labeling classifiers)."""
    m224 = model_entry(f'wavevit-{arch}_8xb128_in1k-tokenlabel')['Metadata']
    m384 = model_entry(f'wavevit-{arch}_8xb32_in1k-384px-tokenlabel')['Metadata']
    assert m224['Parameters'] == m384['Parameters']
    return dict(flops224=m224['FLOPs'] / 1e9, flops384=m384['FLOPs'] / 1e9, params=m224['Parameters'])


ARCHS = dict(s=dict(dims=[64, 128, 320, 448], heads=[2, 4, 10, 14], depths=[3, 4, 6, 3]),
             b=dict(dims=[64, 128, 320, 512], heads=[2, 4, 10, 16], depths=[3, 4, 12, 3]),
             l=dict(dims=[96, 192, 384, 512], heads=[3, 6, 12, 16], depths=[3, 6, 18, 3]))
SR = [4, 2, 1, 1]

#: configs in configs/ that are not published models and so are not in the model index
NOT_INDEXED = {'configs/classification/wavevit-tiny_digits.py'}

TINY_CONFIG = TINY_CLS_CONFIG + "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3))\n"


def attention_macs(arch: str, size: int) -> int:
    """Analytic MACs of all q k^T and attn v products of a Wave-ViT classifier (token-labeling head)."""
    a = ARCHS[arch]
    total = 0
    for i, (dim, depth) in enumerate(zip(a['dims'], a['depths'])):
        side = -(-size // 2**(i + 2))
        n = side * side
        m = n if i >= 2 else (-(-side // 2) // SR[i])**2  # keys: DWT halves, kv_embed divides by sr
        total += depth * n * m * 2 * dim
    n4 = (-(-size // 32))**2
    return total + 1 * (n4 + 1) * 2 * a['dims'][3]  # class attention: 1 query over cls + patch tokens


class Jobs:
    """Subprocesses started together; ``result(name)`` waits for one and returns (returncode, output)."""

    def __init__(self) -> None:
        self.procs: Dict[str, subprocess.Popen] = {}
        self.results: Dict[str, tuple] = {}

    def start(self, name: str, args: List[str], cwd: str, env: Optional[dict] = None) -> None:
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', **(env or {}))
        self.procs[name] = subprocess.Popen([PY] + args, cwd=cwd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, env=env)

    def result(self, name: str, timeout: float = 300) -> tuple:
        if name not in self.results:
            out, _ = self.procs[name].communicate(timeout=timeout)
            self.results[name] = (self.procs[name].returncode, out)
        return self.results[name]

    def ok(self, name: str) -> str:
        code, out = self.result(name)
        assert code == 0, f'{name} failed ({code}):\n{out[-3000:]}'
        return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.communicate()


@pytest.fixture(scope='module')
def jobs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('analysis_tools')
    tiny = tmp / 'tiny_cls.py'
    tiny.write_text(TINY_CONFIG)

    j = Jobs()
    j.tmp = tmp
    j.tiny = tiny
    # one subprocess per tool (the command-line contract); the variants run in-process (see tool())
    j.start('flops_s', [osp.join(TOOLS, 'analysis_tools', 'get_flops.py'),
                        osp.join(CLS_CONFIGS, 'wavevit-s_8xb128_in1k-tokenlabel.py'), '--shape', '224', '--json',
                        str(tmp / 'flops_s.json')], cwd=str(tmp))
    j.start('bench', [osp.join(TOOLS, 'analysis_tools', 'benchmark.py'), str(tiny), '--shape', '64',
                      '--batch-size', '2', '--min-run-time', '0.5', '--warmup', '1', '--threads', '1', '--json',
                      str(tmp / 'bench.json')], cwd=str(tmp))
    # mim finds the package's .mim/model-index.yml through the checkout (PEP 660 editable installs keep the
    # distribution metadata in site-packages; docs/get_started.md)
    env_path = os.pathsep.join([REPO_ROOT] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    j.start('mim_search', [osp.join(osp.dirname(PY), 'mim'), 'search', 'wavevit_mm',
                           '--json', str(tmp / 'mim_search.json')], cwd=str(tmp), env={'PYTHONPATH': env_path})
    yield j
    j.stop()


def tool(name: str):
    """Import a tool script as a module (in-process runs of the variants: no extra interpreter start-up)."""
    return load_script(f"tools/{'visualization' if name == 'vis_wavelets' else 'analysis_tools'}/{name}.py")


def check_paper_flops(res: dict, arch: str, size: int) -> None:
    assert res['input_shape'] == [1, 3, size, size] and res['device'] == 'meta'
    gflops = res['flops'] / 1e9
    expected = paper(arch)
    assert abs(gflops - expected[f'flops{size}']) <= 0.15, (arch, size, gflops)  # what the issue asks
    assert abs(gflops - expected[f'flops{size}']) <= 0.06, (arch, size, gflops)  # the documented convention
    assert res['params'] == expected['params']
    # every attention product of the 4 stages and the class attention, counted through SDPA
    assert res['by_kind']['attention'] == attention_macs(arch, size)


# ------------------------------------------------------------------------------------------ model index
#: the metric names each task's published results carry
TASK_METRICS = {'Image Classification': ('ImageNet-1k', ['Top 1 Accuracy']), 'Object Detection': ('COCO', ['box AP']),
                'Instance Segmentation': ('COCO', ['mask AP']), 'Semantic Segmentation': ('ADE20K', ['mIoU'])}


@pytest.mark.parametrize('arch,size', [('b', 224), ('l', 224), ('s', 384)])
def test_get_flops_other_variants(jobs, arch, size, capsys):
    # (jobs: the subprocesses of this module start first and run while the in-process tests do)
    get_flops = tool('get_flops')
    name = f'wavevit-{arch}_8xb128_in1k-tokenlabel.py' if size == 224 else \
        f'wavevit-{arch}_8xb32_in1k-384px-tokenlabel.py'
    res = get_flops.run(get_flops.parse_args([osp.join(CLS_CONFIGS, name), '--depth', '0']))
    check_paper_flops(res, arch, size)  # the 384 config's default shape is its CenterCrop size
    assert f'Flops: {res["flops"] / 1e9:.3f} G' in capsys.readouterr().out


def test_get_flops_counts_cpu_kernels_as_meta(jobs):
    """SDPA's fused CPU kernel and the backbone count exactly as the meta forward's decomposed ops."""
    get_flops = tool('get_flops')
    common = [str(jobs.tiny), '--shape', '64', '--depth', '2']
    cpu = get_flops.run(get_flops.parse_args(common + ['--device', 'cpu']))
    meta = get_flops.run(get_flops.parse_args(common + ['--device', 'meta']))
    macs = get_flops.run(get_flops.parse_args(common + ['--macs-only']))
    assert cpu['device'] == 'cpu' and meta['device'] == 'meta'
    assert cpu['by_kind'] == meta['by_kind'] and cpu['flops'] == meta['flops']
    assert meta['by_kind']['attention'] > 0 and meta['by_kind']['linear_bias'] > 0
    assert macs['flops'] == sum(meta['by_kind'][k] for k in ('conv', 'matmul', 'attention'))
    assert meta['flops'] == macs['flops'] + sum(
        meta['by_kind'][k] for k in ('conv_bias', 'linear_bias', 'batchnorm', 'relu'))
    rows = {r['module']: r for r in meta['modules']}
    stages = [rows[f'backbone.block{i}']['flops'] for i in range(1, 5)]
    assert all(s > 0 for s in stages) and rows['backbone']['flops'] > sum(stages)


def test_get_flops_segmentor(jobs, capsys):
    get_flops = tool('get_flops')
    cfg = osp.join(REPO_ROOT, 'configs', 'segmentation', 'upernet_wavevit-s_8xb2-160k_ade20k-512x512.py')
    res = get_flops.run(get_flops.parse_args([cfg]))
    assert res['task'] == 'segmentation' and res['input_shape'] == [1, 3, 512, 512]  # crop_size
    rows = {r['module']: r for r in res['modules']}
    assert rows['backbone']['flops'] > 0 and rows['decode_head']['flops'] > rows['backbone']['flops']
    assert rows['backbone']['attention'] == res['by_kind']['attention'] > 0


def test_benchmark_amp_training_step(jobs):
    benchmark = tool('benchmark')
    res = benchmark.run(benchmark.parse_args([str(jobs.tiny), '--shape', '64', '--mode', 'train',
                                              '--min-run-time', '0', '--warmup', '0', '--amp']))
    assert res['precision'] == ('float16' if torch.cuda.is_available() else 'bfloat16') + ' autocast'
    assert 'inference' not in res and res['train']['iters'] >= 1 and res['train']['images_per_s'] > 0


def test_model_index_lists_every_config_and_only_existing_ones():
    models = indexed_models()
    indexed = [m['Config'] for m in models]
    assert len(indexed) == len(set(indexed)), 'a config is indexed twice'
    for m in models:
        assert osp.isfile(osp.join(REPO_ROOT, m['Config'])), f'{m["Name"]}: {m["Config"]} does not exist'
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
    on_disk = {osp.relpath(p, REPO_ROOT) for p in glob.glob(osp.join(REPO_ROOT, 'configs', '*', '*.py'))
               if '/_base_/' not in p}
    assert on_disk - NOT_INDEXED == set(indexed), (
        f'configs missing from the model index: {sorted(on_disk - NOT_INDEXED - set(indexed))}; '
        f'indexed but absent: {sorted(set(indexed) - on_disk)}')


def test_model_index_carries_published_numbers_and_local_weight_addresses():
    """The metafiles are the one source of the published numbers: every published model carries its task's
    metrics, the configs' headers point there without repeating them, the classifiers carry FLOPs and
    parameters; only the recipes trained without token labeling have no published result."""
    for m in indexed_models():
        name = m['Name']
        assert m['Weights'].startswith('wavevit-mm://'), f'{name}: weights are local wavevit-mm:// addresses'
        for r in m.get('Results', []):
            dataset, metrics = TASK_METRICS[r['Task']]
            assert r['Dataset'] == dataset and sorted(r['Metrics']) == metrics, name
            assert all(0 < v < 100 for v in r['Metrics'].values()), name
        with open(osp.join(REPO_ROOT, m['Config'])) as f:
            header = ''.join(line for line in f if line.startswith('#'))
        for dataset, values in published(name).items():
            assert 'metafile.yml' in header, f'{m["Config"]}: the header should point at the metafile'
            assert not any(str(v) in header for v in values.values()), f'{m["Config"]} repeats a published number'
    assert {m['Name'] for m in indexed_models() if 'Results' not in m} == {
        f'wavevit-{a}_8xb128_in1k' for a in 'sbl'}  # trained without token labeling: no published result
    for arch in 'sbl':
        expected = paper(arch)
        assert expected['params'] > 0 and 0 < expected['flops224'] < expected['flops384']
        assert expected == PAPER[arch], f'the metafile states other FLOPs / parameters for {arch} than the paper'
    # every published number as the paper gives it
    assert {m['Name']: published(m['Name']) for m in indexed_models() if 'Results' in m} == PAPER_RESULTS


def test_get_flops_cli_wavevit_s(jobs):
    out = jobs.ok('flops_s')
    with open(jobs.tmp / 'flops_s.json') as f:
        check_paper_flops(json.load(f), 's', 224)
    assert 'Flops: 4.652 G' in out and 'Params: 22.690 M' in out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith(('backbone ', 'head '))]
    assert rows == ['backbone', 'head']


def test_benchmark(jobs):
    out = jobs.ok('bench')
    with open(jobs.tmp / 'bench.json') as f:
        res = json.load(f)
    # progress as plain lines (stdout is a pipe here): the warm-up step, then the timed steps
    assert 'warm-up 1/1' in out and 'of 0.5 s' in out and '\r' not in out
    assert res['precision'] == 'float32' and res['batch_size'] == 2 and res['threads'] == 1
    for phase in ('inference', 'train'):
        r = res[phase]
        assert r['iters'] >= 1 and r['iters'] % r['steps_per_block'] == 0
        assert r['images_per_s'] > 0 and r['peak_memory_mb'] > 0
        assert r['latency_ms_median'] > 0 and r['latency_ms_min'] <= r['latency_ms_median']
        assert r['images_per_s'] == pytest.approx(2 / (r['latency_ms_mean'] / 1e3))
    assert 'images/s' in out and 'peak memory' in out


def test_mim_search_lists_every_model(jobs):
    code, out = jobs.result('mim_search')
    assert code == 0, out[-3000:]
    with open(jobs.tmp / 'mim_search.json') as f:
        table = json.load(f)  # field -> {config id: value}
    names = set(table['config'])
    assert names == {m['Name'] for m in indexed_models()}
    for m in indexed_models():  # mim reads every published number and FLOPs count as the metafiles hold them
        for dataset, values in published(m['Name']).items():
            for metric, value in values.items():
                assert table[f'{dataset}/{metric}'.lower().replace(' ', '_')][m['Name']] == value
        if 'FLOPs' in m['Metadata']:
            assert table['flops'][m['Name']] == m['Metadata']['FLOPs']
