"""Suite-wide settings and fixtures. Shared helpers (the reference model, tiny archs, data makers) live in
:mod:`wavevit_mm.testing`, the way ``mmengine.testing`` / ``mmdet.testing`` hold theirs."""
import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope='module')
def one_torch_thread():
    """Run a module's tests with one intra-op thread (restored afterwards): models of many small ops on tiny
    inputs gain little from a second thread on an idle machine and lose several times on a busy one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """Every test starts with the registry scope the previous one started with: a Runner, an Inferencer or
    ``init_default_scope`` run in-process sets mmengine's default scope (mmpretrain / mmdet / mmseg) for good,
    and a later test building another library's model would then look it up in the wrong registry. mmengine's
    own ``DefaultScope.overwrite_default_scope`` restores the scope the same way."""
    import copy

    from mmengine.registry import DefaultScope
    before = copy.deepcopy(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = before


def _scope(name: str):
    """``name`` as mmengine's default registry scope during a test, the previous scope back afterwards (test
    modules build models of all three libraries; none may leave its scope behind for the next)."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(name):
        yield


@pytest.fixture
def mmdet_scope():
    yield from _scope('mmdet')


@pytest.fixture
def mmseg_scope():
    yield from _scope('mmseg')


@pytest.fixture
def mmpretrain_scope():
    yield from _scope('mmpretrain')


@pytest.fixture(scope='session')
def fork_server(tmp_path_factory):
    """A :class:`wavevit_mm.testing.faults.ForkServer`: runs of tools/train.py / tools/test.py in forked children
    of one process that has imported everything (one import for the session, not one per run). Its environment
    is the launch tests' (tiny data set, one thread, weights-only torch.load); a request may change it."""
    from wavevit_mm.testing import launch as H
    from wavevit_mm.testing.faults import ForkServer
    data = H.tiny_data(H.shared_root(tmp_path_factory))
    with ForkServer(H.launch_env(data), str(tmp_path_factory.mktemp('fork_server') / 'server.log')) as server:
        yield server
