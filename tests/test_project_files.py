"""The files a user of an OpenMMLab project expects at the top: the license setup.py declares, in full, and the
citation of the paper, the same in CITATION.cff and in the README's BibTeX."""
import hashlib
import os.path as osp
import re

import yaml

import wavevit_mm
from wavevit_mm.utils.paths import PROJECT_ROOT

#: sha256 of the Apache License 2.0 text as apache.org publishes it (LICENSE-2.0.txt)
APACHE_2_SHA256 = 'cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30'
AUTHORS = [('Yao', 'Ting'), ('Pan', 'Yingwei'), ('Li', 'Yehao'), ('Ngo', 'Chong-Wah'), ('Mei', 'Tao')]
TITLE = 'Wave-ViT: Unifying Wavelet and Transformers for Visual Representation Learning'


def read(name: str) -> str:
    with open(osp.join(PROJECT_ROOT, name), encoding='utf-8') as f:
        return f.read()


def test_license_is_the_full_apache_2_text_setup_py_declares():
    assert hashlib.sha256(read('LICENSE').encode()).hexdigest() == APACHE_2_SHA256
    assert "license='Apache License 2.0'" in read('setup.py')


def test_citation_cff_and_readme_bibtex_cite_the_paper():
    cff = yaml.safe_load(read('CITATION.cff'))
    assert cff['cff-version'] == '1.2.0' and cff['message'] and cff['title'] and cff['authors']
    assert cff['version'] == wavevit_mm.__version__ and cff['license'] == 'Apache-2.0'
    paper = cff['preferred-citation']
    assert paper['type'] == 'conference-paper' and paper['title'] == TITLE and paper['year'] == 2022
    assert [(a['family-names'], a['given-names']) for a in paper['authors']] == AUTHORS
    assert 'ECCV' in paper['conference']['name'] and paper['url'] == 'https://arxiv.org/abs/2207.04978'

    bibtex = re.search(r'```bibtex\n(@inproceedings\{.*?\n\})\n```', read('README.md'), re.S)
    assert bibtex, 'README.md has no BibTeX block'
    fields = dict(re.findall(r'(\w+)\s*=\s*\{(.*?)\},?\n', bibtex.group(1)))
    assert fields['title'] == TITLE and fields['year'] == '2022' and 'ECCV' in fields['booktitle']
    assert fields['author'] == ' and '.join(f'{family}, {given}' for family, given in AUTHORS)
