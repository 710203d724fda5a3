"""Everything the anomalies area contributes besides its assets: the alerts job and sensor.

The anomaly assets themselves are materialized with their metrics (`defs/metrics/hourly.py`).
"""

import dagster as dg

from loglens_pipeline.defs.anomalies.alerts import build_alert_sensor, build_alerts_job
from loglens_pipeline.defs.project import Project


def anomalies_definitions(project: Project) -> dg.Definitions:
    alerts_job = build_alerts_job(project)
    return dg.Definitions(jobs=[alerts_job], sensors=[build_alert_sensor(project, alerts_job)])
