"""Item pipelines and the pure transforms behind them: parse, normalise, dedupe, store."""
