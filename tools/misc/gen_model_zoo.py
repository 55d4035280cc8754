#!/usr/bin/env python
"""Write the model-zoo ``README.md`` of each task folder under ``configs/`` from its ``metafile.yml``.

The metafiles (listed in ``model-index.yml``, read by mim and by mmpretrain's model hub) are the one source of
the published numbers; the READMEs beside the configs are generated from them, never edited by hand::

    python tools/misc/gen_model_zoo.py            # (re)write configs/*/README.md
    python tools/misc/gen_model_zoo.py --check    # exit 1, naming the files, if a README is not up to date

Each README has the collection's facts (paper, official code, training data and techniques), one table row per
model (config, parameters, FLOPs, schedule, every published metric, the ``Weights`` address and the official
download it is converted from), the models' comments, and the commands that train and test a config.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from wavevit_mm.utils.paths import PROJECT_ROOT, metafile_paths

#: the library whose tools train each task folder's configs
LIBRARIES = {'classification': 'mmpretrain', 'detection': 'mmdet', 'segmentation': 'mmseg'}
GENERATED = ('<!-- Generated from metafile.yml by tools/misc/gen_model_zoo.py: do not edit; edit the metafile and '
             'run `python tools/misc/gen_model_zoo.py`. -->')


metafiles = metafile_paths


def _number(value: float, scale: float, digits: int) -> str:
    return f'{value / scale:.{digits}f}'


def _schedule(meta: dict) -> str:
    if 'Epochs' in meta:
        return f'{meta["Epochs"]} epochs'
    if 'Iterations' in meta:
        iters = meta['Iterations']
        return f'{iters // 1000}k iters' if iters % 1000 == 0 else f'{iters} iters'
    return '–'


def _link(text: str, url: str) -> str:
    return f'[{text}]({url})'


def render(metafile: str, root: str = PROJECT_ROOT) -> str:
    """The README text for one metafile (paths in it relative to the metafile's folder)."""
    with open(metafile) as f:
        meta = yaml.safe_load(f)
    folder = osp.dirname(metafile)
    task = osp.basename(folder)
    rel_root = osp.relpath(root, folder)
    models = meta['Models']
    lines: List[str] = []

    # metric columns: every (dataset, metric) pair, in the order the models first report them
    columns: List[Tuple[str, str]] = []
    for m in models:
        for r in m.get('Results', []):
            for metric in r['Metrics']:
                if (r['Dataset'], metric) not in columns:
                    columns.append((r['Dataset'], metric))
    tasks = list(dict.fromkeys(r['Task'] for m in models for r in m.get('Results', [])))
    datasets = list(dict.fromkeys(d for d, _ in columns))
    library = LIBRARIES.get(task)
    lines += [f'# Wave-ViT: {" / ".join(tasks)} on {", ".join(datasets)}' + (f' ({library})' if library else ''),
              '', GENERATED, '']

    for c in meta.get('Collections', []):
        paper = c.get('Paper', '')
        title, _, url = paper.rpartition(' ')  # 'TITLE (VENUE) URL'
        lines.append(f'**{c["Name"]}**: ' + (_link(title, url) if url.startswith('http') else paper) + '.')
        code = c.get('Code') or {}
        if code.get('URL'):
            lines.append(f'Official code: {code["URL"]}' + (f' ({code["Version"]})' if code.get('Version') else '')
                         + '.')
        if c.get('README'):
            lines.append(f'Recipes, data and commands: {_link(c["README"], osp.join(rel_root, c["README"]))}.')
        lines.append('')
        lines += [f'- {key}: {", ".join(map(str, v)) if isinstance(v, list) else v}'
                  for key, v in (c.get('Metadata') or {}).items()]
        lines.append('')
    collection_meta = {c['Name']: c.get('Metadata') or {} for c in meta.get('Collections', [])}

    weights_doc = _link('converting weights', osp.join(rel_root, 'docs', 'converting_weights.md'))
    lines += ['The results are the published ones (the paper and the official READMEs), not measured with these '
              "configs. Weights: the address of each model's file in the metafile; Official: the official download "
              f'it is converted from ({weights_doc}).', '', '## Models', '']
    header = ['Model', 'Params (M)', 'FLOPs (G)', 'Schedule'] + [f'{metric} ({dataset})' for dataset, metric
                                                                 in columns] + ['Config', 'Weights', 'Official']
    lines += ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    notes: Dict[str, int] = {}  # comment -> note number
    for m in models:
        md = {**collection_meta.get(m.get('In Collection'), {}), **(m.get('Metadata') or {})}
        metrics: Dict[Tuple[str, str], float] = {}
        for r in m.get('Results', []):
            metrics.update(((r['Dataset'], k), v) for k, v in r['Metrics'].items())
        official = (m.get('Converted From') or {}).get('Weights')
        config = osp.relpath(osp.join(root, m['Config']), folder)
        if m.get('Comment'):
            notes.setdefault(m['Comment'], len(notes) + 1)
        row = [m['Name'] + (f' [{notes[m["Comment"]]}]' if m.get('Comment') else ''),
               _number(md['Parameters'], 1e6, 2) if 'Parameters' in md else '–',
               _number(md['FLOPs'], 1e9, 1) if 'FLOPs' in md else '–',
               _schedule(md)] + [str(metrics.get(col, '–')) for col in columns] + [
               _link('config', config), f'`{m["Weights"]}`' if m.get('Weights') else '–',
               _link('download', official) if official else '–']
        lines.append('| ' + ' | '.join(row) + ' |')
    lines.append('')
    if notes:
        lines += [f'[{number}] {comment}' + ('  ' if number < len(notes) else '') for comment, number in notes.items()]
        lines.append('')

    first = models[0]['Config']
    lines += ['## Usage', '', 'From the repository root (any of the three tasks; see ' +
              _link('get_started.md', osp.join(rel_root, 'docs', 'get_started.md')) + '):', '', '```bash',
              f'python tools/train.py {first}',
              f'python tools/test.py {first} CHECKPOINT',
              f'mim search wavevit_mm --config {models[0]["Name"]}',
              '```', '', f'Citation: {_link("README", osp.join(rel_root, "README.md#citation"))}.', '']
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description='Model-zoo READMEs from the metafiles',
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument('--check', action='store_true', help='only check that every README is up to date')
    parser.add_argument('--root', default=PROJECT_ROOT, help='the project (default: this one)')
    args = parser.parse_args(argv)
    stale = []
    for metafile in metafiles(args.root):
        readme = osp.join(osp.dirname(metafile), 'README.md')
        text = render(metafile, args.root)
        if osp.isfile(readme):
            with open(readme) as f:
                if f.read() == text:
                    continue
        if args.check:
            stale.append(osp.relpath(readme, args.root))
        else:
            with open(readme, 'w') as f:
                f.write(text)
            print(f'wrote {osp.relpath(readme, args.root)}')
    if stale:
        print(f'not generated from the current metafiles: {", ".join(stale)}; run python tools/misc/gen_model_zoo.py',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
