"""The HTTP read API (an entrypoint, like the collector): timelines, profiles, scores."""
