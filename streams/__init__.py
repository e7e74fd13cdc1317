"""Stream processing: the faust worker that folds touchpoints into the projections."""
