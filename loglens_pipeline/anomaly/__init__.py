"""Anomaly scoring of metric series: expected value, band, score and flag per point.

Plain numpy/pandas (no Dagster). `score_points` scores one series with no look-ahead;
`DETECTORS` maps `AnomalySpec.method` to its `Detector`. See docs/anomaly.md.
"""

from loglens_pipeline.anomaly.detectors import (
    DETECTORS,
    Context,
    Detector,
    Estimate,
    RobustDetector,
    SeasonalDetector,
    ZScoreDetector,
)
from loglens_pipeline.anomaly.scoring import (
    DISABLED,
    INSUFFICIENT,
    RESULT_COLUMNS,
    score_groups,
    score_points,
)

__all__ = [
    "DETECTORS",
    "DISABLED",
    "INSUFFICIENT",
    "RESULT_COLUMNS",
    "Context",
    "Detector",
    "Estimate",
    "RobustDetector",
    "SeasonalDetector",
    "ZScoreDetector",
    "score_groups",
    "score_points",
]
