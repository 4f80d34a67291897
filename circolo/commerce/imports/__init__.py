"""File import for stores without a connector: CSV or JSONL of customers, products or orders.

reading.py streams a file's rows with their line numbers; mapping.py knows the fields of each
kind and suggests which column holds which; rows.py turns mapped rows into schema records
with per-field errors; runner.py creates, checks (dry run) and runs (resumably) ImportJobs.
"""
