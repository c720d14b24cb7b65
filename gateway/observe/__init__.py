"""What operators see: Prometheus metrics (metrics.py), the access log
(accesslog.py) and the JSON log format, in UTC (logs.py)."""
