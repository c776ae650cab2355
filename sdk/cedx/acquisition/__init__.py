"""The reference acquisition source (cedx serve acquisition): simulated plants behind the
generated acquisition-server stub, serving signed, hash-chained measurement batches."""
