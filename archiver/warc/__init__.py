"""The only place that knows WARC bytes: what a record is, writing, reading for the indexes, checking."""
