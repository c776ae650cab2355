"""The data auto-acquisition side of cedx.

* ``store`` — SealedStore: where a source keeps sealed, signed, hash-chained columnar batches;
  the API other writers (the simulation, the HJ 212 bridge) use to append and seal readings.
* ``batches`` — the batch format: one-pass canonical bytes, sealing, verification of a stream.
* ``source`` / ``app`` — the reference source (cedx serve acquisition) answering from the store.
* ``pull`` — the client side: streaming, verified pulls with the next page prefetched.
* ``simulate`` — seeded simulated plants (power, cement) writing into the store.

Normative rules: docs/trust-batches.md.
"""
