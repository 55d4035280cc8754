"""tools/misc/gen_model_zoo.py: the model-zoo README of each task folder is the one generated from its metafile
(the one source of the published numbers), and it carries every model and number of the metafile."""
import os.path as osp
import subprocess
import sys

import yaml

from wavevit_mm.utils.paths import PROJECT_ROOT, TOOLS_DIR, load_script


def load_tool():
    return load_script('tools/misc/gen_model_zoo.py')


def test_committed_readmes_are_generated_from_the_metafiles():
    tool = load_tool()
    metafiles = tool.metafiles()
    assert {osp.basename(osp.dirname(m)) for m in metafiles} == {'classification', 'detection', 'segmentation'}
    for metafile in metafiles:
        readme = osp.join(osp.dirname(metafile), 'README.md')
        assert osp.isfile(readme), f'{readme} is missing: run python tools/misc/gen_model_zoo.py'
        with open(readme) as f:
            assert f.read() == tool.render(metafile), \
                f'{readme} differs from what its metafile generates: run python tools/misc/gen_model_zoo.py'


def test_readmes_carry_every_model_and_number():
    tool = load_tool()
    for metafile in tool.metafiles():
        with open(metafile) as f:
            models = yaml.safe_load(f)['Models']
        text = tool.render(metafile)
        rows = {line.split(' | ')[0].lstrip('| ').split(' [')[0]: line for line in text.splitlines()
                if line.startswith('| ') and not line.startswith('| Model ')}
        assert list(rows) == [m['Name'] for m in models], metafile
        for m in models:
            row = rows[m['Name']]
            assert f'[config]({osp.basename(m["Config"])})' in row and osp.isfile(osp.join(PROJECT_ROOT, m['Config']))
            assert f'`{m["Weights"]}`' in row
            for result in m.get('Results', []):
                for value in result['Metrics'].values():
                    assert f' {value} |' in row, (m['Name'], value)
            if 'Parameters' in m.get('Metadata', {}):
                assert f' {m["Metadata"]["Parameters"] / 1e6:.2f} |' in row
        # relative links resolve from the README's folder
        for target in ('../../docs/converting_weights.md', '../../README.md'):
            assert osp.isfile(osp.normpath(osp.join(osp.dirname(metafile), target)))


def test_check_mode_names_a_stale_readme(tmp_path, capsys):
    """--check exits 1 and names the file when a README no longer matches its metafile (as after editing a
    published number without regenerating; on a copy of the project files); regenerating fixes it."""
    import shutil
    root = tmp_path / 'project'
    root.mkdir()
    for name in ('model-index.yml', 'README.md', 'docs', 'configs'):
        src = osp.join(PROJECT_ROOT, name)
        (shutil.copytree if osp.isdir(src) else shutil.copyfile)(src, root / name)
    tool = load_tool()
    metafile = str(root / 'configs' / 'segmentation' / 'metafile.yml')
    with open(metafile) as f:
        text = f.read()
    assert 'mIoU: 51.5' in text
    with open(metafile, 'w') as f:
        f.write(text.replace('mIoU: 51.5', 'mIoU: 51.6'))
    assert '| 51.6 |' in tool.render(metafile, root=str(root))
    with open(root / 'configs' / 'segmentation' / 'README.md') as f:
        assert f.read() != tool.render(metafile, root=str(root))
    assert tool.main(['--check', '--root', str(root)]) == 1
    assert 'configs/segmentation/README.md' in capsys.readouterr().err
    proc = subprocess.run([sys.executable, osp.join(TOOLS_DIR, 'misc', 'gen_model_zoo.py'), '--check'],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr  # the real project is up to date
    assert tool.main(['--root', str(root)]) == 0 and tool.main(['--check', '--root', str(root)]) == 0
