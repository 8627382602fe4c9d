"""ebr.encoders: featurizers, two-tower models, losses, training, export (issue: Encoders)."""
