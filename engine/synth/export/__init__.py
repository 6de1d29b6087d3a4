"""Exports of synthetic worlds: a scene (map + photos + truth), a CVNAF-layout and a VIGOR-style dataset."""
from engine.synth.export.cvnaf import export_cvnaf
from engine.synth.export.scene import export_scene
from engine.synth.export.vigor import export_vigor

__all__ = ["export_scene", "export_cvnaf", "export_vigor"]
