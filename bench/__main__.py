"""``make bench``: every benchmark, each in its own process (its own Django and database), each writing its
section of docs/benchmarks.md."""

import subprocess
import sys

BENCHMARKS = [["metrics"], ["alerts"], ["alerts", "--postgres"], ["monitoring"], ["monitoring", "--postgres"],
              ["otlp"], ["otlp", "--postgres"], ["activity"], ["activity", "--postgres"],
              ["exposition"], ["exposition", "--postgres"], ["http"], ["partitions"], ["reads"]]


def main() -> int:
    for name, *options in BENCHMARKS:
        print(f"== bench.{name} {' '.join(options)}", flush=True)
        status = subprocess.run([sys.executable, "-m", f"bench.{name}", *options]).returncode
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
