"""HTTP for capture: libcurl with a total deadline, retries, the address guard and per-host politeness."""
