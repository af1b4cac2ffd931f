"""Benchmarking: dataset readers (own QA JSONL, SQuAD v1.1, BEIR), metrics, runner and report.

Kept free of imports on purpose: `rag.bench.metrics` and `rag.bench.datasets` are pure Python,
so loading a benchmark set or scoring answers never pulls in torch or FAISS.
"""
