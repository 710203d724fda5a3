"""A job for the run launcher tests: it logs its process and sleeps as long as it is told."""

import os
import sys
import time

import dagster as dg


@dg.op(config_schema={"sleep_seconds": dg.Field(float, default_value=0.0)})
def report_process(context: dg.OpExecutionContext) -> None:
    context.log.info(f"worker pid={os.getpid()} argv={' '.join(sys.argv)}")
    time.sleep(context.op_config["sleep_seconds"])


@dg.job(executor_def=dg.in_process_executor)
def report_job():
    report_process()


defs = dg.Definitions(jobs=[report_job])
