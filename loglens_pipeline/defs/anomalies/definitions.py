"""Everything the anomalies area contributes: assets with checks, alerts job and sensor."""

import dagster as dg

from loglens_pipeline.defs.anomalies.alerts import build_alert_sensor, build_alerts_job
from loglens_pipeline.defs.anomalies.assets import build_anomaly_asset
from loglens_pipeline.defs.project import Project


def anomalies_definitions(project: Project, partitions: dg.PartitionsDefinition) -> dg.Definitions:
    alerts_job = build_alerts_job(project)
    return dg.Definitions(
        assets=[build_anomaly_asset(project, m, partitions) for m in project.metrics],
        jobs=[alerts_job],
        sensors=[build_alert_sensor(project, alerts_job)],
    )
