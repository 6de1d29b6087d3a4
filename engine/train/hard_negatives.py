"""Sample4Geo's visual hard negatives: every item's neighbours re-ranked by the current model (its ground
descriptor against every satellite descriptor), shared by all processes of a run."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from engine.data.datasets.records import CrossViewItem
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs
from engine.model.device import DistributedContext
from engine.progress import CancelToken
from engine.train.config import SamplerConfig
from engine.train.loading import loadable
from engine.train.sampler import NeighbourBatchSampler, visual_neighbours


def mining_due(config: SamplerConfig, sampler: NeighbourBatchSampler, epoch: int) -> bool:
    """Visual hard negatives are mined at the start of every mine_every-th epoch after the first (GPS)
    one, unless the table in hand was made for this epoch (a run resumed mid-epoch)."""
    return (config.mode == "neighbours" and epoch > 0 and epoch % config.mine_every == 0
            and sampler.built_for_epoch != epoch)


def mine_hard_negatives(model, items: Sequence[CrossViewItem], pair_config: PairConfig, conflicts,
                        pool: int, ctx: DistributedContext, *, batch_size: int, num_workers: int, seed: int,
                        cancel: CancelToken | None = None,
                        progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
    """The (items, pool) neighbour table of visual hard negatives. Each process embeds a share of the items;
    rank 0 ranks them and every process gets its table. `model` is left in training mode."""
    count = len(items)
    pairs = CrossViewPairs(list(items), pair_config, None, seed=seed)
    mine = list(range(ctx.rank, count, ctx.world_size))
    loader = DataLoader(loadable(pairs, num_workers),
                        batch_sampler=[mine[i:i + batch_size] for i in range(0, len(mine), batch_size)],
                        collate_fn=collate_pairs, num_workers=num_workers)
    dim = model.config.descriptor_dim
    ground, satellite, indices = [], [], []
    model.eval()
    with torch.inference_mode():
        for batch in loader:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if batch is None:
                continue
            ground.append(model.embed_ground(batch["ground"], with_pyramid=False).descriptor.float().cpu())
            satellite.append(model.embed_satellite(batch["satellite"], with_pyramid=False).descriptor.float().cpu())
            indices.append(batch["index"])
            if progress is not None:
                progress("mining hard negatives", sum(len(i) for i in indices) * ctx.world_size, count)
    model.train()
    empty = torch.zeros(0, dim)
    local_index = torch.cat(indices) if indices else torch.zeros(0, dtype=torch.int64)
    all_ground = ctx.gather_rows(torch.cat(ground) if ground else empty, local_index, count)
    all_satellite = ctx.gather_rows(torch.cat(satellite) if satellite else empty, local_index, count)
    table = torch.zeros((count, pool), dtype=torch.int64)
    if ctx.is_main:
        table = torch.from_numpy(visual_neighbours(all_ground, all_satellite, conflicts, pool))
    return ctx.broadcast(table).numpy()
