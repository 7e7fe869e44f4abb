"""Prefect flows that run the dvc.yaml DAG and publish what each stage produced."""
