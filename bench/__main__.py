"""``make bench``: every benchmark, each writing its section of docs/benchmarks.md."""

import sys

from bench import metrics


def main() -> int:
    status = metrics.main([])
    try:
        from bench import alerts
    except ImportError:
        return status
    return status or alerts.main([])


if __name__ == "__main__":
    sys.exit(main())
