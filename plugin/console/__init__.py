"""ebr console."""
