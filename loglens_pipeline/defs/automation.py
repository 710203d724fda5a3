"""The sensor that evaluates every asset's automation condition (late data, reader copy)."""

import dagster as dg

AUTOMATED_GROUPS = ("metrics", "anomalies", "warehouse")


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Running by default: a fresh instance would otherwise start it stopped."""
    return dg.AutomationConditionSensorDefinition(
        "loglens_automation_sensor",
        target=dg.AssetSelection.groups(*AUTOMATED_GROUPS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        # The daemon visits sensors every 5 s; a minimum of 5 skips every other visit (a visit
        # reaching the sensor a moment earlier finds under 5 s elapsed), one under it none.
        minimum_interval_seconds=3,
        description=(
            "Re-materializes metric and anomaly partitions of recent hours when ingestion wrote "
            "events into them (late or out-of-order data), and republishes the BI reader copy "
            "after the warehouse changed."
        ),
    )


def deps_updated_since_requested() -> dg.AutomationCondition:
    """A dependency was updated since automation last requested this asset (or partition).

    Dagster's `since_last_handled()` also counts the asset's own materialization as handling an
    update, but a run that was already under way when the dependency changed may not have seen
    the change: when both land between two ticks, the update is lost (a reader copy published
    before the anomaly rows it should carry; late lines committed during their hour's metrics
    run). Here only a new request resets the condition, so the asset runs once more.
    """
    requested = (
        dg.AutomationCondition.newly_requested() | dg.AutomationCondition.initial_evaluation()
    )
    return dg.AutomationCondition.any_deps_updated().since(requested.with_label("requested"))
