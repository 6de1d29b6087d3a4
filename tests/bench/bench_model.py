"""Model size, FLOPs and throughput of the default CrossViewNet on 2 CPU threads (and CUDA when present)."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.model import CrossViewNet, ModelConfig

CPU_THREADS = 2
CPU_BATCHES = (1, 8)
GPU_BATCHES = (1, 64)
WARMUP = 2
REPEATS = 10


def _gflops(fn: Callable[[], object], images: int) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / images / 1e9


def _images_per_second(fn: Callable[[], object], images: int, synchronize: Callable[[], None]) -> float:
    times = []
    with torch.inference_mode():
        for index in range(WARMUP + REPEATS):
            start = time.perf_counter()
            fn()
            synchronize()
            if index >= WARMUP:
                times.append(time.perf_counter() - start)
    # best run: on a shared machine it is the one least disturbed by other processes
    return images / min(times)


def _parameter_rows(model: CrossViewNet) -> list[dict]:
    encoder = model.satellite_encoder
    parts = {"backbone (timm efficientnet_lite0)": encoder.backbone, "pyramid projection": encoder.pyramid,
             "descriptor head (conv + GeM + projection)": encoder.head, "CAFR attention": model.attention,
             "fine-localisation head": model.fine_head}
    rows = [{"part": name, "parameters (M)": sum(p.numel() for p in module.parameters()) / 1e6}
            for name, module in parts.items()]
    rows.append({"part": "total (shared backbone)", "parameters (M)": model.parameter_count() / 1e6})
    return rows


def _throughput_rows(model: CrossViewNet, batches: tuple[int, ...], device: torch.device) -> list[dict]:
    return [row for batch in batches for row in _rows_for_batch(model, batch, device)]


def _rows_for_batch(model: CrossViewNet, batch: int, device: torch.device) -> list[dict]:
    config = model.config
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ground = torch.rand(batch, 3, *config.ground_hw, device=device)
    satellite = torch.rand(batch, 3, *config.satellite_hw, device=device)
    with torch.inference_mode():
        ground_embedding = model.embed_ground(ground)
        satellite_embedding = model.embed_satellite(satellite)
    calls = [
        ("embed_satellite, descriptor only (gallery indexing)", config.satellite_hw,
         lambda: model.embed_satellite(satellite, with_pyramid=False)),
        ("embed_satellite with pyramid", config.satellite_hw, lambda: model.embed_satellite(satellite)),
        ("embed_ground", config.ground_hw, lambda: model.embed_ground(ground)),
        ("attend (per ground-tile pair)", config.satellite_hw,
         lambda: model.attend(ground_embedding, satellite_embedding)),
        ("localize_fine (per ground-tile pair)", config.satellite_hw,
         lambda: model.localize_fine(ground_embedding, satellite_embedding)),
    ]
    return [{"call": name, "input (H x W)": f"{size[0]} x {size[1]}", "batch": batch,
             "GFLOPs / image": _gflops(fn, batch), "images / s": _images_per_second(fn, batch, synchronize)}
            for name, size, fn in calls]


def run() -> list[dict]:
    config = ModelConfig()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    try:
        model = CrossViewNet(config).prepare_for_inference("cpu")
        sections = [
            {"section": "Model size (default CrossViewNet)", "rows": _parameter_rows(model),
             "notes": f"Ground {config.ground_hw[1]} x {config.ground_hw[0]} px (W x H), satellite tile "
                      f"{config.satellite_hw[1]} x {config.satellite_hw[0]} px at "
                      f"{config.metres_per_pixel} m/px "
                      f"({config.tile_size_m[1]:.0f} m), descriptor {config.descriptor_dim}-d, pyramid width "
                      f"{config.pyramid_dim}. Ground and satellite share one encoder."},
            {"section": f"CPU throughput ({CPU_THREADS} threads, float32)",
             "rows": _throughput_rows(model, CPU_BATCHES, torch.device("cpu")),
             "notes": f"Batches {CPU_BATCHES}, {WARMUP} warm-up runs, best of {REPEATS}; "
                      "torch.inference_mode, channels_last input. GFLOPs counted by "
                      "torch.utils.flop_counter (2 FLOPs per multiply-add). Retrieval needs only the "
                      "descriptor; attend and localize_fine run on the few top-ranked tiles. On 2 cores "
                      "batches of 4-8 are fastest; 16 and more run slower per image (intermediate tensors "
                      "of ~100 MB stop fitting in cache)."},
        ]
    finally:
        torch.set_num_threads(previous_threads)
    if torch.cuda.is_available():
        model = CrossViewNet(config).prepare_for_inference("cuda")
        sections.append({"section": f"GPU throughput ({torch.cuda.get_device_name(0)}, autocast)",
                         "rows": _throughput_rows(model, GPU_BATCHES, torch.device("cuda")),
                         "notes": f"Batches {GPU_BATCHES}, bf16 (or fp16) autocast, channels_last."})
    return sections


if __name__ == "__main__":
    for section in run():
        print(section["section"])
        for row in section["rows"]:
            print("  ", row)
