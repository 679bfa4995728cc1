"""``structocr exporter``: the cache and its fetch rules, the HTTP server, the Prometheus
rules and the Grafana dashboard (``dashboard.json``)."""
