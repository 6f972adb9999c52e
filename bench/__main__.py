"""``make bench``: every benchmark, each writing its section of docs/benchmarks.md."""

import sys

from bench import metrics


def main() -> int:
    status = metrics.main([])
    try:
        from bench import alerts
    except ImportError:
        return status
    status = status or alerts.main([])
    from bench import monitoring

    return status or monitoring.main([])


if __name__ == "__main__":
    sys.exit(main())
