"""The published numbers as the tests read them: from the metafiles that ``model-index.yml`` imports, the one
place they are written (config headers point there; the per-task README tables are generated from them)."""
from functools import lru_cache
from typing import Dict, List

import yaml

from ..utils.paths import metafile_paths


@lru_cache(maxsize=None)
def indexed_models() -> List[dict]:
    """Every model entry of the metafiles, after checking that it names one of its metafile's collections."""
    models = []
    for metafile in metafile_paths():
        with open(metafile) as f:
            meta = yaml.safe_load(f)
        names = {c['Name'] for c in meta['Collections']}
        for m in meta['Models']:
            assert m['In Collection'] in names, f'{metafile}: {m["Name"]} names an unknown collection'
            models.append(m)
    return models


def model_entry(name: str) -> dict:
    """The metafile entry of a model (its config's file name without ``.py``)."""
    found = [m for m in indexed_models() if m['Name'] == name]
    assert len(found) == 1, f'{name} is indexed {len(found)} times'
    return found[0]


def published(name: str) -> Dict[str, Dict[str, float]]:
    """``{dataset: {metric: value}}`` of a model's ``Results`` (box AP and mask AP are two results on COCO);
    empty for a recipe without a published result."""
    results: Dict[str, Dict[str, float]] = {}
    for r in model_entry(name).get('Results', []):
        results.setdefault(r['Dataset'], {}).update(r['Metrics'])
    return results
