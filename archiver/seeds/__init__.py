"""Seeds: what to capture, read from seed documents, URL lists, RSS/Atom feeds, URLs and stdin."""
