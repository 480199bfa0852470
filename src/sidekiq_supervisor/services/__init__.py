"""Use cases: the only layer that the web and CLI layers call."""
