"""Monitoring what is served: the serving log and training/serving skew."""
