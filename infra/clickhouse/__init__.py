"""Analytics in ClickHouse: a server through ``clickhouse-driver`` (native protocol, the
distributed mode) or chDB in-process (the embedded default), one SQL dialect for both."""
