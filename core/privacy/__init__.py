"""Privacy by design: personal-data masking, consent, my data, erasure and retention."""
