"""Cross-view model: timm feature-pyramid encoders, GeM descriptors, CAFR attention + CWR, fine-localisation
head, losses and checkpoint I/O. `CrossViewNet()` builds the default model with offline ImageNet weights."""
from engine.model.cafr_attention import AttentionResult
from engine.model.checkpoint import CheckpointError
from engine.model.config import LossConfig, ModelConfig
from engine.model.encoder import ViewEmbedding
from engine.model.fine_head import FineLocalization
from engine.model.losses import CafrLoss, CafrTargets
from engine.model.network import CrossViewNet, CrossViewOutput

__all__ = [
    "AttentionResult",
    "CafrLoss",
    "CafrTargets",
    "CheckpointError",
    "CrossViewNet",
    "CrossViewOutput",
    "FineLocalization",
    "LossConfig",
    "ModelConfig",
    "ViewEmbedding",
]
