"""Detectors: one module each, options declared in one dataclass with defaults and units."""

from streamqc.detectors.av_sync import AvSyncDetector
from streamqc.detectors.base import Detector
from streamqc.detectors.black import BlackDetector
from streamqc.detectors.click import ClickDetector
from streamqc.detectors.clipping import ClippingDetector
from streamqc.detectors.corruption import CorruptionDetector
from streamqc.detectors.decode_error import DecodeErrorDetector
from streamqc.detectors.discontinuity import DiscontinuityDetector
from streamqc.detectors.dropout import DropoutDetector
from streamqc.detectors.format_change import FormatChangeDetector
from streamqc.detectors.freeze import FreezeDetector
from streamqc.detectors.loudness import LoudnessDetector
from streamqc.detectors.missing_track import MissingTrackDetector
from streamqc.detectors.silence import SilenceDetector
from streamqc.detectors.stutter import StutterDetector

# The order events of one instant are produced in; each name is an options namespace.
ALL_DETECTORS: tuple[type[Detector], ...] = (
    FreezeDetector,
    BlackDetector,
    StutterDetector,
    DecodeErrorDetector,
    CorruptionDetector,
    SilenceDetector,
    DropoutDetector,
    ClippingDetector,
    ClickDetector,
    LoudnessDetector,
    DiscontinuityDetector,
    FormatChangeDetector,
    MissingTrackDetector,
    AvSyncDetector,
)

__all__ = ["ALL_DETECTORS", "Detector"] + [d.__name__ for d in ALL_DETECTORS]
