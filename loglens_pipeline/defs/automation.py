"""The sensor that evaluates every asset's automation condition (late data, reader copy)."""

import dagster as dg

AUTOMATED_GROUPS = ("metrics", "anomalies", "warehouse")


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Running by default: a fresh instance would otherwise start it stopped."""
    return dg.AutomationConditionSensorDefinition(
        "loglens_automation_sensor",
        target=dg.AssetSelection.groups(*AUTOMATED_GROUPS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=5,
        description=(
            "Re-materializes metric and anomaly partitions of recent hours when ingestion wrote "
            "events into them (late or out-of-order data), and republishes the BI reader copy "
            "after the warehouse changed."
        ),
    )
