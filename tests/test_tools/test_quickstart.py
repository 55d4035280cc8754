"""tools/quickstart.py, the README's first command: a short run end to end (quiet console: one progress bar per
phase, the top-1 and where the checkpoint, the log and the curves went; the tools' whole output in the work dir),
and the progress display fed by mmengine's log lines, with and without ``--verbose``."""
import glob
import io
import os
import os.path as osp
import re
import subprocess
import sys

from wavevit_mm.testing.figures import check_png
from wavevit_mm.utils.paths import PROJECT_ROOT, TOOLS_DIR, load_script


def test_quickstart_end_to_end(tmp_path):
    work_dir = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, osp.join(TOOLS_DIR, 'quickstart.py'), '--work-dir', str(work_dir),
                           '--data-root', str(tmp_path / 'digits'), '--epochs', '1', '--limit', '100'],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert len(out.splitlines()) < 40, f'the quickstart printed {len(out.splitlines())} lines:\n{out}'
    assert 'digits: 80 train / 20 held-out val images of 32 x 32' in out
    # one rich progress bar per phase, each with done / total, elapsed time and ETA
    for phase, done in (('data', '100/100 images'), ('train', '3/3 iters'), ('test', '1/1 batches')):
        assert re.search(rf'^{phase} .* {done} \d+:\d\d:\d\d eta \d+:\d\d:\d\d', out, re.M), (phase, out)
    top1 = re.search(r'top-1 ([0-9.]+)% \(chance 10%\), 20 images', out)
    assert top1 and 0. <= float(top1.group(1)) <= 100.
    top1 = float(top1.group(1))
    assert top1 % 5 == 0, top1  # a count of right answers out of 20 images
    assert len(os.listdir(tmp_path / 'digits' / 'train')) == 10 and len(os.listdir(tmp_path / 'digits' / 'val')) == 10
    # where things went: the checkpoint, mmengine's log of the training and the curves, all in the work dir
    paths = dict(re.findall(r'^  (checkpoint|log|curves) +(\S+)$', out, re.M))
    assert set(paths) == {'checkpoint', 'log', 'curves'}, out
    assert paths['checkpoint'] == str(work_dir / 'epoch_1.pth') and osp.isfile(paths['checkpoint'])
    check_png(paths['curves'])
    with open(paths['log']) as f:
        log = f.read()
    assert re.search(r'eta: \d+:\d+:\d+', log)  # mmengine's progress logging, in the work dir
    assert 'Config:' not in out and 'Config:' in log  # the config dump is in the log, not on the console
    with open(work_dir / 'quickstart_test.log') as f:
        logged = re.search(r'Epoch\(test\) \[1/1\].*accuracy/top1: ([0-9.]+)', f.read())
    assert logged and float(logged.group(1)) == top1  # the console reports what tools/test.py measured
    assert glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))


FAKE_TRAINING = r'''
import sys
print('Config:\n' + 'x = 1\n' * 50)
for epoch in (1, 2):
    for it in (10, 20, 25):
        print(f'11/29 03:31:31 - mmengine - INFO - Epoch(train)  [{epoch}][{it}/25]  lr: 1.0e-03  eta: 0:00:01  '
              f'time: 0.1  data_time: 0.01  loss: {2.0 / epoch:.4f}')
    print(f'11/29 03:31:32 - mmengine - INFO - Epoch(val) [{epoch}][4/4]    accuracy/top1: {50.0 * epoch:.4f}')
sys.exit(int(sys.argv[1]))
'''


def test_progress_from_mmengine_lines(tmp_path):
    """The bar follows mmengine's lines (iterations, loss, validation top-1); the whole output goes to the log
    file, and to the console only with --verbose; a failure shows the output's tail and names the log."""
    from rich.console import Console
    quickstart = load_script('tools/quickstart.py')
    cmd = [sys.executable, '-c', FAKE_TRAINING]
    for verbose in (False, True):
        console = Console(file=io.StringIO(), width=120)
        log_file = str(tmp_path / f'train_{verbose}.log')
        out = quickstart.run_phase('train', cmd + ['0'], 40, 'iters', log_file, console, verbose=verbose, epochs=2)
        shown = console.file.getvalue()
        with open(log_file) as f:
            assert 'accuracy/top1: 100.0000' in out and out == f.read()
        bar = [line for line in shown.splitlines() if line.startswith('train ')]
        assert len(bar) == 1 and '50/50 iters' in bar[0]  # total corrected to 2 epochs x 25 iterations
        assert 'epoch 2, loss 1.000, val top-1 100.00%' in bar[0]
        assert ('Config:' in shown) == verbose and ('x = 1' in shown) == verbose
    console = Console(file=io.StringIO(), width=120)
    try:
        quickstart.run_phase('train', cmd + ['3'], 40, 'iters', str(tmp_path / 'failed.log'), console)
    except SystemExit as e:
        message = str(e)
    else:
        raise AssertionError('a failing tool must end the quickstart')
    assert 'train failed (exit code 3)' in message and str(tmp_path / 'failed.log') in message
    assert 'Epoch(val) [2][4/4]' in message  # the tail of the output
