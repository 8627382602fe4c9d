"""ebr.ingest: document readers, batch encoding, bulk writers (later issues)."""
