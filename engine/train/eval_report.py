"""The result of an evaluation: EvalReport (metrics, arrays for the plots, a text table) and its files
(report.json, the recall@k curve and the error CDF as PNG)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_path, write_text_atomic
from engine.train.json_values import json_safe
from engine.train.metrics import recall_curve


@dataclass
class EvalReport:
    """Results of `evaluate`. Metrics are fractions (recall) and metres; arrays are kept for the plots."""

    dataset: str
    queries: int
    gallery_size: int
    gallery_scope: str
    overall: dict[str, float]
    city_average: dict[str, float]
    per_city: dict[str, dict[str, float]]
    per_fov: dict[str, dict[str, float]]
    fov_average_r1: float
    hit_rate: float | None
    fine: dict[str, Any]
    cwr: dict[str, Any]
    settings: dict[str, Any]
    seconds: float
    skipped_queries: int = 0
    ranks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    query_gallery_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    query_cities: list[str] = field(default_factory=list, repr=False)
    fine_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    centre_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    cwr_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def metrics(self) -> dict[str, float]:
        """A flat dict for progress curves and histories."""
        flat = {key: value for key, value in self.overall.items()}
        flat["city_avg_R@1"] = self.city_average.get("R@1", math.nan)
        flat["fov_avg_R@1"] = self.fov_average_r1
        if self.hit_rate is not None:
            flat["hit_rate"] = self.hit_rate
        flat["fine_median_m"] = self.fine.get("median_m", math.nan)
        flat["fine_mean_m"] = self.fine.get("mean_m", math.nan)
        flat["tile_centre_median_m"] = self.fine.get("tile_centre_median_m", math.nan)
        flat["cwr_median_m"] = self.cwr.get("median_m", math.nan)
        return flat

    def to_dict(self) -> dict[str, Any]:
        return json_safe({
            "dataset": self.dataset, "queries": self.queries, "skipped_queries": self.skipped_queries,
            "gallery_size": self.gallery_size, "gallery_scope": self.gallery_scope,
            "overall": self.overall, "city_average": self.city_average, "per_city": self.per_city,
            "per_fov": self.per_fov, "fov_average_R@1": self.fov_average_r1, "hit_rate": self.hit_rate,
            "fine": self.fine, "cwr": self.cwr, "settings": self.settings, "seconds": self.seconds,
            "recall_curve": recall_curve(self.ranks, max_k=min(100, max(1, self.gallery_size)))})

    def table(self) -> str:
        """A plain-text summary for the command line."""
        lines = [f"{self.dataset}: {self.queries} queries, gallery {self.gallery_size} tiles "
                 f"({'per city' if self.gallery_scope == 'city' else 'pooled'})"]
        header = f"  {'group':<24} {'queries':>7} {'gallery':>7} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'R@1%':>7}"
        lines.append(header)

        def row(name: str, values: dict) -> str:
            gallery = str(int(values["gallery"])) if "gallery" in values else "-"
            return (f"  {name:<24} {int(values.get('queries', 0)):>7} {gallery:>7} "
                    + " ".join(f"{100 * values.get(k, math.nan):>6.2f}%" for k in ("R@1", "R@5", "R@10", "R@1%")))

        for city, values in self.per_city.items():
            lines.append(row(city, values))
        for bucket, values in self.per_fov.items():
            lines.append(row(f"FoV {bucket}", values))
        lines.append(row("all queries", {**self.overall, "queries": self.queries, "gallery": self.gallery_size}))
        if len(self.per_city) > 1:
            lines.append(f"  city average R@1 {100 * self.city_average['R@1']:.2f}%")
        if self.per_fov:
            lines.append(f"  FoV-bucket average R@1 {100 * self.fov_average_r1:.2f}%")
        if self.hit_rate is not None:
            lines.append(f"  hit rate {100 * self.hit_rate:.2f}%")
        if self.fine.get("count"):
            lines.append(f"  fine-grained error: mean {self.fine['mean_m']:.2f} m, median {self.fine['median_m']:.2f} m"
                         f" (tile centre: mean {self.fine['tile_centre_mean_m']:.2f} m, median "
                         f"{self.fine['tile_centre_median_m']:.2f} m; {self.fine['count']} pairs)")
        if self.cwr.get("count"):
            lines.append(f"  CWR centre error (level {self.cwr['level']}): mean {self.cwr['mean_m']:.2f} m, "
                         f"median {self.cwr['median_m']:.2f} m")
        return "\n".join(lines)


def write_report(report: EvalReport, folder: str | Path) -> dict[str, Path]:
    """report.json, recall_at_k.png and error_cdf.png in `folder` (created); returns their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "recall": folder / "recall_at_k.png",
             "errors": folder / "error_cdf.png"}
    write_text_atomic(paths["json"], json.dumps(report.to_dict(), indent=2) + "\n")

    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    max_k = min(100, max(1, report.gallery_size))
    cities = np.array(report.query_cities)
    if len(report.per_city) > 1:
        for city in report.per_city:
            curve = np.array(recall_curve(report.ranks[cities == city], max_k))
            if curve.size:
                axes.plot(curve[:, 0], 100 * curve[:, 1], linewidth=1, alpha=0.7, label=city)
    curve = np.array(recall_curve(report.ranks, max_k))
    if curve.size:
        axes.plot(curve[:, 0], 100 * curve[:, 1], linewidth=2.2, color="black", label="all queries")
    axes.set_xscale("log")
    axes.set_xlabel("k")
    axes.set_ylabel("recall@k (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{report.dataset}: recall@k ({report.queries} queries)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    _save_png(figure, paths["recall"])

    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    series = [("fine head", report.fine_errors_m), ("tile centre (baseline)", report.centre_errors_m),
              (f"CWR point (level {report.cwr.get('level', 0)})", report.cwr_errors_m)]
    for label, errors in series:
        if len(errors):
            ordered = np.sort(errors)
            axes.plot(ordered, 100 * np.arange(1, len(ordered) + 1) / len(ordered), label=label)
    axes.set_xlabel("error (m)")
    axes.set_ylabel("pairs with smaller error (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{report.dataset}: localisation error on the true tile")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    _save_png(figure, paths["errors"])
    return paths


def _save_png(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
