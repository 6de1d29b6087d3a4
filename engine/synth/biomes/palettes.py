"""Colour palettes of the biome generators: ground, roofs, facades, cars, road paint."""
from __future__ import annotations

import numpy as np

from engine.synth.world import Material as M

#: Ground colours as seen from above: (colour A, colour B, mid-scale variation, per-cell grain).
#: A and B are mixed by a large-scale noise field, the rest multiplies brightness.
GROUND_PALETTE: dict[int, tuple[tuple[int, int, int], tuple[int, int, int], float, float]] = {
    M.GRASS: ((84, 104, 56), (126, 130, 80), 0.10, 0.08),
    M.ROAD: ((76, 78, 80), (102, 102, 100), 0.06, 0.11),
    M.PAVED: ((148, 145, 137), (182, 178, 168), 0.05, 0.08),
    M.DIRT: ((128, 108, 82), (164, 144, 112), 0.09, 0.09),
    M.FIELD: ((118, 128, 70), (170, 160, 100), 0.08, 0.06),
    M.GARDEN: ((74, 112, 50), (108, 136, 66), 0.09, 0.09),
    M.SAND: ((204, 190, 156), (228, 214, 182), 0.04, 0.05),
    M.ROCK: ((112, 106, 98), (158, 150, 136), 0.12, 0.12),
    M.WATER: ((26, 56, 76), (40, 74, 92), 0.03, 0.02),
    M.ROOF: ((120, 120, 120), (140, 140, 140), 0.05, 0.05),
    M.TREE: ((50, 72, 38), (70, 90, 46), 0.10, 0.10),
}

#: Flat roofs: tar, gravel, concrete, white membrane, dark membrane, rusty/metal, green roof.
FLAT_ROOFS = np.array([(96, 96, 98), (138, 134, 126), (160, 158, 152), (206, 206, 202), (70, 72, 76),
                       (118, 110, 100), (176, 172, 160), (92, 108, 70)], np.float32)
FLAT_ROOF_P = np.array([0.18, 0.2, 0.2, 0.16, 0.1, 0.06, 0.07, 0.03])
#: Pitched roofs: terracotta, dark red tile, brown, dark grey shingle, slate, light grey, green metal.
PITCHED_ROOFS = np.array([(168, 86, 62), (132, 64, 52), (112, 84, 66), (78, 78, 82), (92, 96, 106),
                          (150, 148, 144), (82, 104, 88)], np.float32)
#: Facades: beige, cream, white, light grey, brick, dark brick, concrete, glass blue, sand.
FACADES = np.array([(196, 182, 156), (222, 212, 188), (236, 234, 228), (176, 176, 172), (156, 86, 64),
                    (118, 70, 56), (150, 148, 142), (112, 138, 160), (204, 170, 124)], np.float32)
#: Car paints, weighted like real traffic (white, black, greys dominate).
CAR_COLOURS = np.array([(226, 226, 224), (34, 34, 38), (172, 174, 178), (112, 114, 118), (146, 30, 32),
                        (36, 58, 118), (26, 40, 70), (196, 184, 150), (60, 90, 60), (210, 170, 40)],
                       np.float32)
CAR_P = np.array([0.25, 0.2, 0.16, 0.14, 0.08, 0.06, 0.04, 0.03, 0.02, 0.02])
GLASS = np.array((28, 34, 42), np.float32)
#: Paint layer codes: colour and blend weight range (1 white paint, 2 yellow paint, 3 paving joints,
#: 4 light paving, 5 sports-field lines).
MARKING_COLOURS = {1: ((226, 226, 220), 0.6, 0.92), 2: ((214, 182, 60), 0.6, 0.92),
                   3: ((96, 94, 90), 0.3, 0.45), 4: ((214, 210, 200), 0.35, 0.5), 5: ((236, 236, 232), 0.7, 0.9)}


def pick_colour(rng: np.random.Generator, table: np.ndarray, p: np.ndarray | None = None,
                jitter: float = 0.08) -> np.ndarray:
    """A palette colour with per-object brightness and tint jitter."""
    c = table[rng.choice(len(table), p=p)]
    return np.clip(c * rng.uniform(1 - jitter, 1 + jitter) * rng.uniform(0.97, 1.03, 3), 0, 255)
