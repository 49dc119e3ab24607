"""Tooling the runtime never imports: the engines' test and measurement
harnesses behind `ctrain verify`, `ctrain fuzz` and `ctrain bench`, the
performance report and the resource estimate.

- random_insn: random valid single-instruction cases of every opcode;
- cross_check: an engine against the numpy engine on those cases and on
  faulting mutations of them (`ctrain verify`);
- fuzz: mutated instruction streams against the decoder (`ctrain fuzz`);
- bench: training speed of the emulation against float frameworks (`ctrain bench`);
- perfreport: the performance report of a program on a board (`ctrain perf`,
  `ctrain train --report`), from the cycle model and the resource estimate;
- resources: the resource estimate of the accelerator on a board, counted from
  the HLS sources (`python -m ctrain.tools.resources [board ...] [--items]`).

The cycle model (ctrain.perfmodel) and its reading of the HLS sources
(ctrain.hls_source) stay at the top level: the compiler uses them as its
cost model.
"""
