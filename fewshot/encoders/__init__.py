"""Text encoders: which weights a name means (:mod:`~fewshot.encoders.registry`), the encoder
(:mod:`~fewshot.encoders.encoder`), its int8 variant (:mod:`~fewshot.encoders.int8`), trained heads
(:mod:`~fewshot.encoders.heads`) and the reproducibility switch (:mod:`~fewshot.encoders.determinism`)."""
