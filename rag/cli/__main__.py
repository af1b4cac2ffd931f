"""`python -m rag.cli`, as the benchmarks run it: the same command as `rag`."""

from rag.cli import main

main()
