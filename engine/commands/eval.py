"""`viewfinder eval --model M --dataset D`: retrieval recall, fine-grained and CWR errors of a saved model,
printed as a table; --out also writes report.json and the recall@k and error-CDF plots."""
from __future__ import annotations

import sys
from pathlib import Path

from engine.commands.common import EXIT_OK, EXIT_USAGE, ProgressBars, positive_float, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a dataset (recall@k, localisation errors)")
    p.add_argument("--model", type=Path, required=True, help="a model file (.safetensors) saved by training")
    p.add_argument("--dataset", type=Path, required=True, help="dataset folder")
    from engine.data.kinds import LAYOUT_CHOICES  # lazy: the readers load only when a layout is checked
    p.add_argument("--layout", choices=LAYOUT_CHOICES, metavar="LAYOUT",
                   help="dataset layout: %(choices)s (default: recognised from the folder)")
    p.add_argument("--split", help="split to evaluate (default: the layout's evaluation split)")
    p.add_argument("--cities", help="comma-separated cities (default: all of the split)")
    p.add_argument("--vigor-mode", choices=("same_area", "cross_area"), default="same_area")
    p.add_argument("--scope", choices=("city", "all"),
                   help="rank each city against its own gallery, or all against one (default: city; VIGOR: all)")
    p.add_argument("--out", type=Path, help="folder for report.json, recall_at_k.png and error_cdf.png")
    p.add_argument("--max-items", type=positive_int, help="evaluate a seeded random subset of the queries")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--workers", type=int, default=2, help="data loading processes (default 2)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--panorama-fov", type=positive_float,
                   help="FoV of the queries cut from panoramas (CVUSA/CVACT/VIGOR/CV-Cities), degrees")
    p.add_argument("--offcentre", type=float, default=0.8,
                   help="camera placed within this central fraction of the tile for localisation errors "
                        "(0: the layout's own position; default 0.8)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    import engine.train as training  # import-linter reads `from engine.train import evaluate` as the module
    from engine.data.errors import DatasetError
    from engine.model import CheckpointError, CrossViewNet
    from engine.train import EvalConfig, detect_kind, open_dataset, pair_config_for, requested_device, write_report

    if not 0.0 <= args.offcentre <= 1.0:
        print(f"viewfinder eval: error: --offcentre must be in [0, 1], got {args.offcentre}", file=sys.stderr)
        return EXIT_USAGE
    try:
        device = requested_device(args.device)
        model = CrossViewNet.load(args.model, device)
        kind = detect_kind(args.dataset, args.layout)
        cities = [c.strip() for c in args.cities.split(",") if c.strip()] if args.cities else None
        reader = open_dataset(kind, args.dataset, args.split, cities=cities, vigor_mode=args.vigor_mode)
        # evaluate with the pair settings the model was trained with (tile fraction, panorama FoV, ...)
        trained = dict(model.metadata.get("training", {}).get("pairs", {}))
        overrides = {key: value for key, value in trained.items()
                     if key in ("tile_fraction", "panorama_fov_deg", "crop_seed", "random_orientation")}
        if args.panorama_fov is not None:
            overrides["panorama_fov_deg"] = args.panorama_fov
        pair_config = pair_config_for(model.config, overrides)
    except (CheckpointError, DatasetError, RuntimeError, ValueError) as exc:
        print(f"viewfinder eval: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    scope = args.scope or ("all" if kind in ("vigor", "synthetic-vigor") else "city")
    config = EvalConfig(batch_size=args.batch_size, num_workers=max(0, args.workers), max_items=args.max_items or 0,
                        gallery_scope=scope, offcentre_fraction=args.offcentre)
    bars = ProgressBars(not args.quiet)
    try:
        report = training.evaluate(model, reader, config, pair_config=pair_config, progress=bars, dataset_name=kind)
    except DatasetError as exc:
        print(f"viewfinder eval: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        bars.close()
    print(f"model {args.model} on {args.dataset} ({kind}, split {getattr(reader, 'split', '-')}), "
          f"{report.seconds:.0f} s")
    print(report.table())
    if args.out is not None:
        paths = write_report(report, args.out)
        print(f"report written to {paths['json']} (+ {paths['recall'].name}, {paths['errors'].name})")
    return EXIT_OK
