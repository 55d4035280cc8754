"""tools/visualization/vis_wavelets.py and tools/analysis_tools/plot_curves.py: each run once from the command line
(as users run them; the two subprocesses start together in the module fixture) and in process for the variants.
Every figure written is opened and looked at (size, not blank)."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from wavevit_mm.testing import TINY_ARCH, TINY_CLS_CONFIG, build_classifier
from wavevit_mm.testing.figures import check_png
from wavevit_mm.utils.paths import TOOLS_DIR, load_script

IMAGE = osp.join(osp.dirname(__import__('skimage').__file__), 'data', 'astronaut.png')

#: a classifier in the ImageNet configs' layout (final_norm=False: its final norm is the head's), with a test
#: pipeline that crops 96 x 96 (the input size vis_wavelets takes from a config)
TINY_CLS_CONFIG_96 = TINY_CLS_CONFIG + """test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=110, edge='short'),
    dict(type='CenterCrop', crop_size=96), dict(type='PackInputs')]))
"""


def tool(name: str):
    """Import a tool script as a module (in-process runs of the variants: no extra interpreter start-up)."""
    folder = 'visualization' if name == 'vis_wavelets' else 'analysis_tools'
    return load_script(f'tools/{folder}/{name}.py')


def write_mmengine_log(work_dir: str) -> None:
    """Two runs (the second resumed from epoch 2), in the layout and record format mmengine writes."""
    runs = {
        '20240101_000000': [(1, 10, 2.0), (1, 20, 1.6), 'val1', (2, 30, 1.3), (2, 40, 1.1), 'val2'],
        '20240101_010000': [(3, 50, 0.9), (3, 60, 0.8), 'val3'],
    }
    top1 = {'val1': 40.0, 'val2': 55.0, 'val3': 61.5}
    for stamp, records in runs.items():
        vis = osp.join(work_dir, stamp, 'vis_data')
        os.makedirs(vis)
        lines = []
        for r in records:
            if isinstance(r, str):
                lines.append(dict(**{'accuracy/top1': top1[r], 'accuracy/top5': top1[r] + 30},
                                  data_time=0.01, time=0.02, step=int(r[-1])))
            else:
                epoch, it, loss = r
                lines.append(dict(base_lr=1e-3, lr=1e-3, data_time=0.01, loss=loss, time=0.1, epoch=epoch,
                                  iter=it, memory=100, step=it))
        text = ''.join(json.dumps(line) + '\n' for line in lines)
        for name in ('scalars.json', f'{stamp}.json'):
            with open(osp.join(vis, name), 'w') as f:
                f.write(text)
        with open(osp.join(work_dir, stamp, f'{stamp}.log'), 'w') as f:
            f.write('text log\n')


@pytest.fixture(scope='module')
def cli(tmp_path_factory):
    """The two tools' command lines, started together: vis_wavelets on a classifier config and a converted
    classifier checkpoint, plot_curves on a work dir with a resumed training."""
    tmp = tmp_path_factory.mktemp('visualization')
    config = tmp / 'tiny_cls.py'
    config.write_text(TINY_CLS_CONFIG_96)
    torch.manual_seed(0)
    classifier = build_classifier(TINY_ARCH, aux_head=True, num_classes=10, in_channels=64, num_heads=4)
    classifier.init_weights()
    # the layout of tools/model_converters/wavevit2mm.py's output: backbone.* and head.* (head.norm = norm4)
    torch.save({'state_dict': classifier.state_dict()}, tmp / 'tiny_cls.pth')
    write_mmengine_log(str(tmp / 'work_dir'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    procs = {
        'vis': [osp.join(TOOLS_DIR, 'visualization', 'vis_wavelets.py'), IMAGE, '--size', '96', '--config',
                str(config), '--checkpoint', str(tmp / 'tiny_cls.pth'), '--out', str(tmp / 'vis' / 'ckpt.png')],
        'curves': [osp.join(TOOLS_DIR, 'analysis_tools', 'plot_curves.py'), str(tmp / 'work_dir')],
    }
    procs = {name: subprocess.Popen([sys.executable, *args], cwd=str(tmp), env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for name, args in procs.items()}
    results = {}

    def output(name: str) -> str:
        if name not in results:
            out, _ = procs[name].communicate(timeout=300)
            assert procs[name].returncode == 0, f'{name} failed ({procs[name].returncode}):\n{out[-3000:]}'
            results[name] = out
        return results[name]

    yield dict(tmp=tmp, config=config, output=output)
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.communicate()


# ------------------------------------------------------------------------------------------------ vis_wavelets
def test_vis_wavelets_subbands_match_definition():
    vis = tool('vis_wavelets')
    img = vis.load_image(IMAGE, 32)
    bands, recon = vis.image_subbands(img)
    luma = vis.image_luma(img)
    a, b, c, d = luma[0::2, 0::2], luma[0::2, 1::2], luma[1::2, 0::2], luma[1::2, 1::2]
    expected = torch.stack([a + b + c + d, a + b - c - d, a - b + c - d, a - b - c + d]) / 2
    assert torch.allclose(bands[0], expected, atol=1e-6)
    assert torch.allclose(recon[0, 0], luma, atol=1e-6)


def test_vis_wavelets_classifier_checkpoint(cli):
    """A converted classifier checkpoint on a classifier config: every backbone tensor loaded, the head's final
    norm included, and no warning about ``norm4`` keys."""
    out = cli['output']('vis')
    check_png(cli['tmp'] / 'vis' / 'ckpt.png', min_size=(1000, 400))
    assert 'weights: tiny_cls.pth' in out and 'RANDOM' not in out
    assert 'loaded all' in out  # every backbone tensor came from the checkpoint
    assert 'norm4' not in out and 'missing keys' not in out and 'unexpected keys' not in out
    assert 'image 96x96 (--size)' in out


def test_vis_wavelets_random_weights(tmp_path, capsys):
    vis = tool('vis_wavelets')
    out_png = str(tmp_path / 'random.png')
    res = vis.run(vis.parse_args([IMAGE, '--size', '64', '--out', out_png]))
    check_png(out_png, min_size=(1000, 400))
    out = capsys.readouterr().out
    assert 'RANDOM weights' in out and 'local branch (1, 16, 16, 16)' in out
    err = float(out.split('inverse DWT ')[1].split()[0])
    assert err < 1e-6  # the Haar transform of the image is inverted exactly
    # comparable panels share one colour scale: the image's detail sub-bands (symmetric about 0) and the
    # attention's four filtered sub-bands (from 0)
    scales = res['scales']
    lo, hi = scales['LH']
    assert scales['HL'] == scales['HH'] == (lo, hi) and lo == -hi and hi > 0
    filtered = {scales[f'filtered {b}'] for b in vis.BANDS}
    assert len(filtered) == 1 and next(iter(filtered))[0] == 0 and next(iter(filtered))[1] > 0
    assert scales['LL'] != (lo, hi)


def test_vis_wavelets_takes_the_input_size_from_the_config(cli, capsys):
    vis = tool('vis_wavelets')
    out_png = str(cli['tmp'] / 'config_size.png')
    res = vis.run(vis.parse_args([IMAGE, '--config', str(cli['config']), '--out', out_png]))
    assert res['size'] == (96, 96)  # the config's CenterCrop, not the 224 default
    assert "image 96x96 (the config's input size)" in capsys.readouterr().out
    check_png(out_png, min_size=(1000, 400))
    with pytest.raises(SystemExit):
        vis.parse_args([IMAGE, '--size', '33'])


# ------------------------------------------------------------------------------------------------- plot_curves
def test_plot_curves(cli, capsys):
    out = cli['output']('curves')
    check_png(cli['tmp'] / 'work_dir' / 'curves.png')
    assert '2 log(s)' in out and '6 training records, 3 validation records' in out
    assert 'plotted loss, accuracy/top1, accuracy/top5' in out
    assert 'plotting 20240101_000000 (iterations 10-40), 20240101_010000 (iterations 50-60, resumed)' in out
    plot_curves = tool('plot_curves')
    work_dir = str(cli['tmp'] / 'work_dir')
    plot_curves.main([work_dir, '--keys', 'loss', 'lr', 'accuracy/top5', '--run', 'latest', '--out',
                      str(cli['tmp'] / 'latest.png'), '--smooth', '2'])
    check_png(cli['tmp'] / 'latest.png')
    out = capsys.readouterr().out
    assert '1 log(s)' in out and '2 training records, 1 validation records' in out
    train, val, by_epoch = plot_curves.read_records(plot_curves.find_logs(work_dir))
    assert by_epoch and [r['iter'] for r in train] == [10, 20, 30, 40, 50, 60]
    assert [(r['step'], r['accuracy/top1']) for r in val] == [(1, 40.0), (2, 55.0), (3, 61.5)]
    with pytest.raises(KeyError, match=r"\['mIoU'\] not in the logs.*accuracy/top1"):
        plot_curves.plot(work_dir, keys=['mIoU'])
    with pytest.raises(FileNotFoundError, match='no mmengine JSON log'):
        plot_curves.plot(str(cli['tmp'] / 'vis'))


def test_plot_curves_does_not_merge_separate_runs(cli, tmp_path, capsys):
    """A second, separate training in the same work dir (it starts again at epoch 1) is not joined to the first:
    the latest training is plotted and the tool says which runs it left out; --run picks another."""
    plot_curves = tool('plot_curves')
    work_dir = tmp_path / 'work_dir'
    shutil.copytree(cli['tmp'] / 'work_dir', work_dir)
    later = work_dir / '20240102_000000'
    shutil.copytree(work_dir / '20240101_000000', later)  # a new training from scratch
    for name in ('scalars.json', '20240101_000000.json'):
        (later / 'vis_data' / name).write_text(
            ''.join(json.dumps(dict(r, loss=r['loss'] * 2) if 'loss' in r else r) + '\n'
                    for r in map(json.loads, (later / 'vis_data' / name).read_text().splitlines())))
    out_png = plot_curves.plot(str(work_dir))
    check_png(out_png)
    out = capsys.readouterr().out
    assert 'holds 3 training run(s); plotting 20240102_000000 (iterations 10-40); left out 20240101_000000 ' \
           '(iterations 10-40), 20240101_010000 (iterations 50-60, resumed)' in out
    assert '4 training records, 2 validation records' in out
    assert plot_curves.find_logs(str(work_dir)) == [str(later / 'vis_data' / 'scalars.json')]
    # the earlier training, picked by name or by `all` (which joins everything, as before)
    assert len(plot_curves.find_logs(str(work_dir), '20240101_010000')) == 1
    assert len(plot_curves.find_logs(str(work_dir), 'all')) == 3
    with pytest.raises(ValueError, match=r"--run 'nope': no such run.*20240102_000000"):
        plot_curves.find_logs(str(work_dir), 'nope')


def test_plot_curves_cli_errors_name_the_fix(cli):
    """Usage errors end with a one-line message and exit status 2, not a traceback."""
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, osp.join(TOOLS_DIR, 'analysis_tools', 'plot_curves.py'),
                           str(cli['tmp'] / 'work_dir'), '--keys', 'loss', 'mIoU'],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert "plot_curves.py: error: ['mIoU'] not in the logs" in proc.stderr
    assert "validation keys: ['accuracy/top1', 'accuracy/top5']" in proc.stderr
