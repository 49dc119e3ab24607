"""Tooling the runtime never imports: the engines' test and measurement
harnesses behind `ctrain verify`, `ctrain fuzz` and `ctrain bench`.

- random_insn: random valid single-instruction cases of every opcode;
- cross_check: an engine against the numpy engine on those cases and on
  faulting mutations of them (`ctrain verify`);
- fuzz: mutated instruction streams against the decoder (`ctrain fuzz`);
- bench: training speed of the emulation against float frameworks (`ctrain bench`).

The performance model (ctrain.perfmodel), the resource estimate
(ctrain.resources) and their reading of the HLS sources (ctrain.hls_source)
are tooling too but stay at the top level for now (docs/architecture.md).
"""
