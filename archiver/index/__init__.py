"""The indexes of a collection, all derived from its WARC files: CDXJ (and its zipnum or Redis copy),
the metadata index, the full-text index, and the collection page's listing."""
