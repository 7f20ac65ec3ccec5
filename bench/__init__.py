"""The project's benchmarks: `make bench` runs every part and merges their figures (docs/benchmarks.md)."""
