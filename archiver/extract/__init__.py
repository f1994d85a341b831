"""What archiver reads out of captured bytes: content coding and charsets, then a page's title, time, image, text."""
