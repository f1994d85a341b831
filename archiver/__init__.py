"""archiver: capture news articles into WARC files, index, replay with pywb, export metadata."""

__version__ = "0.1.0"
