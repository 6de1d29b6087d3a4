"""Distributed indexing: two torchrun processes on CPU (gloo) build the same gallery as one process."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.engine.pipeline.scenes import small_localizer

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow     # about 15 s: two torchrun ranks
def test_two_ranks_build_the_gallery_one_process_builds(scene, small_checkpoint, tmp_path):
    shared = tmp_path / "shared-cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "engine.index.distributed", str(scene.map_path), "--model", str(small_checkpoint),
               "--cache-dir", str(shared), "--batch-size", "4"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gallery of" in done.stdout
    assert not list((shared / "shards").glob("*.safetensors"))        # merged and cleaned up

    merged = small_localizer(small_checkpoint, shared).index_map(scene.map_path)
    assert merged.from_cache                                            # the Localizer reads what rank 0 wrote
    single = small_localizer(small_checkpoint, tmp_path / "single-cache").index_map(scene.map_path)
    assert not single.from_cache
    assert merged.tiles == single.tiles
    np.testing.assert_allclose(merged.descriptors, single.descriptors, atol=1e-5)

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already in the cache" in again.stderr
