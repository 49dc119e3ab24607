"""Runs a compiled Program on a device: one arena for everything the
accelerator touches, streams written once, then per iteration: batch in,
FP, loss on the host, its quantized gradient back, EB/WG/UPDATE, statistics
out into the exponent manager."""
import numpy as np

from . import hostlib, isa
from .device.accelerator import Accelerator
from .errors import CTrainError
from .exponents import ExponentManager, quantize_scalar, top
from .fixedpoint import rshift_round, sat8
from .floatnet import softmax_xent, top_of

MASTER_FRAC_BITS = 16  # fractional bits of the master copy below the int8 copy's LSB
BN_A_BITS = 15         # magnitude bits of a frozen batch norm's scale
BN_B_BITS = 24         # and of its offset
LR_BITS = 15


#: how the host rounds the loss gradient to int8 (TrainConfig.loss_rounding)
LOSS_ROUNDING = ("nearest", "stochastic")
#: keeps the rounding's random stream apart from any other use of the seed
_ROUNDING_STREAM = 0x4C47  # "LG"


def stochastic_quantize(g, e, seed, iteration):
    """int8 q = sat8(floor(g * 2^-e + u)), u uniform in [0, 1): unbiased
    (E[q] 2^e = g), so the small errors of well-classified images survive as
    often-zero, sometimes-one LSBs instead of always rounding to zero. u comes
    from a generator keyed on (seed, iteration), so a resumed run draws the
    same u; the scaling by 2^-e and the sum are exact-or-IEEE in float64, the
    same on every machine, and both engines receive the same int8 error."""
    x = np.asarray(g, np.float64) * 2.0 ** -int(e)
    u = np.random.default_rng([int(seed), int(iteration), _ROUNDING_STREAM]).random(x.shape)
    return np.clip(np.floor(x + u), -128, 127).astype(np.int8)


def board_mismatch(board, device):
    """Why a program compiled for `board` cannot run on `device`, in one line,
    or None: an emulated device runs its own board's configuration, whose
    dense buffers bound the program's tilings (FAULT_TILE on a smaller
    one). A device that names no board (the board device) is not checked."""
    emulates = getattr(device, "board", None)
    if emulates is None or emulates == board:
        return None
    return f"the device emulates {emulates}, the program is compiled for {board}"


class Runtime:
    def __init__(self, program, device, window_log2=2, timeout=60.0, loss_rounding="nearest", seed=0):
        mismatch = board_mismatch(program.board, device)
        if mismatch:
            raise CTrainError(f"{mismatch}: compile for {device.board} or give the device board={program.board!r}")
        if loss_rounding not in LOSS_ROUNDING:
            raise ValueError(f"loss_rounding must be one of {', '.join(LOSS_ROUNDING)}, got {loss_rounding!r}")
        self.loss_rounding, self.seed = loss_rounding, int(seed)
        self.program = program
        self.device = device
        plan = program.plan
        self.arena = device.allocate((plan.size,), np.uint8)
        self.views = {name: self.arena[r.offset:r.offset + r.nbytes].view(r.dtype).reshape(r.shape)
                      for name, r in plan.regions.items()}
        prog_bytes = self.views["program"]
        prog_bytes[...] = program.insns.view(np.uint8).reshape(-1)
        prog_bytes.sync_to_device()
        for L in program.layers:
            if L.sparse:  # built by host_lib when the mask changed, written once
                idx = self.views[L.region("idx")]
                idx[...] = L.index
                idx.sync_to_device()
        self.table = self.views["table"]
        self.stats = self.views["stats"]
        self.accel = Accelerator(device.ip, timeout=timeout)
        self.accel.configure(self.arena.physical_address, plan.size,
                             plan["table"].offset, program.table_len)
        self.exps = ExponentManager(window_log2)
        n_stages = len(program.model.stages)
        self.logits_name = f"act{n_stages}"
        self.err_last = f"err{n_stages}"
        self.sat_totals = np.zeros(len(program.insns), np.int64)
        self.count_totals = np.zeros(len(program.insns), np.int64)
        self.iteration = 0

    # -- state in and out ---------------------------------------------------
    def _load_bn(self, k, a, b, slot_a, slot_b):
        """Frozen batch norm as int32 A (16 significant bits) and B (24 bits)."""
        for name, x, bits, slot in ((f"bnA{k}", a, BN_A_BITS, slot_a), (f"bnB{k}", b, BN_B_BITS, slot_b)):
            t = top_of(x)
            e = (t - bits) if t is not None else -bits
            self.views[name][...] = hostlib.to_master(x, e)[0]
            self.table[slot] = e

    def load_float(self, params, act_tops=(), err_tops=(), masks=None, bn=()):
        """Switch to fixed point: master copies from float weights, exponent
        windows seeded from the float phase's tensor magnitudes; `masks`
        (dense keep-masks) prune a dense program's layers through their mask;
        `bn` gives each batch norm's frozen per-channel (A, B)."""
        p = self.program
        masks = masks or [None] * len(p.layers)
        for L, prm, mask in zip(p.layers, params, masks):
            self._load_layer(L, prm, mask)
        self._seed_windows(act_tops, err_tops)
        for k, (slot_a, slot_b) in enumerate(p.bn_slots):
            self._load_bn(k, *bn[k], slot_a, slot_b)
        self._seed_table()
        self._sync_layers("to")

    def load_bn(self, bn):
        """Replace each frozen batch norm's per-channel (A, B), e.g. recalibrated
        after pruning; the rest of the training state stays."""
        for k, (slot_a, slot_b) in enumerate(self.program.bn_slots):
            self._load_bn(k, *bn[k], slot_a, slot_b)
        for name in self._bn_regions() + ["table"]:
            self.views[name].sync_to_device()

    def _bn_regions(self):
        return [f"bn{ab}{k}" for k in range(len(self.program.bn_slots)) for ab in "AB"]

    def _load_layer(self, L, prm, mask):
        """One layer's state from float weights: the master copy at the
        exponent the weights' magnitude gives (masked), zero momentum and
        gradient, and the int8 copy derived as UPDATE would."""
        w = L.gather(prm["w"].reshape(-1))
        t = top_of(w)
        e_w8 = (t - 7) if t is not None else -7
        e_m = e_w8 - MASTER_FRAC_BITS
        master = self.views[L.region("master")]
        master[:L.n_w] = hostlib.to_master(w, e_m)[0]
        if L.n_b:
            master[L.n_w:] = hostlib.to_master(prm["b"], e_m)[0]
        self.views[L.region("mom")][...] = 0
        self.views[L.region("grad")][...] = 0
        self.views[L.region("mask")][...] = 1 if mask is None else L.gather(
            np.asarray(mask, np.uint8).reshape(-1))
        master[:L.n_w] *= self.views[L.region("mask")]
        self.table[L.slot_m] = e_m
        self.table[L.slot_w8] = self.table[L.slot_w8_next] = e_w8
        self._derive_w8(L)
        self.exps.observe(L.slot_w8_next, e_w8 + 7)

    def _seed_windows(self, act_tops, err_tops):
        """The exponent windows seeded with the float phase's activation and
        error magnitudes, so fixed point starts from exponents that fit."""
        p = self.program
        for tops_per_iter in act_tops:
            for i, t in enumerate(tops_per_iter):
                if p.act_slots[i] not in p.const_slots:
                    self.exps.observe(p.act_slots[i], t)
        for tops_per_iter in err_tops:
            for i, t in enumerate(tops_per_iter):
                if t is not None and p.err_slots[i] is not None:
                    self.exps.observe(p.err_slots[i], t)
            for slot, i in p.part_slots.items():  # a fork's partials: seeded by their sum
                if tops_per_iter[i] is not None:
                    self.exps.observe(slot, tops_per_iter[i])

    def _seed_table(self):
        """The exponent table's constant slots, and every activation and error
        slot at its window's exponent (-7 resp. -14 for a window never seen)."""
        p = self.program
        for slot, value in p.const_slots.items():
            self.table[slot] = value
        for i, slot in enumerate(p.act_slots):
            if slot not in p.const_slots:
                self.table[slot] = self.exps.exponent(slot, -7)
        for slot in [s for s in p.err_slots if s is not None] + list(p.part_slots):
            self.table[slot] = self.exps.exponent(slot, -14)

    def _derive_w8(self, L):
        """The int8 copy exactly as UPDATE derives it from the master copy."""
        m = self.views[L.region("master")][:L.n_w].astype(np.int64)
        shift = int(self.table[L.slot_w8]) - int(self.table[L.slot_m])
        q = sat8(rshift_round(m, shift))[0]
        q[self.views[L.region("mask")] == 0] = 0
        self.views[L.region("w")].reshape(-1)[...] = q

    def _state_regions(self):
        """Regions holding training state: every layer's weights, master copy,
        momentum and mask, and the frozen batch norms."""
        return ([L.region(k) for L in self.program.layers for k in ("w", "master", "mom", "mask")]
                + self._bn_regions())

    def _sync_layers(self, direction):
        """Move the training state; the table goes only to the device, since
        the host is its one writer (the accelerator only reads it)."""
        for name in self._state_regions() + (["table"] if direction == "to" else []):
            v = self.views[name]
            v.sync_to_device() if direction == "to" else v.sync_from_device()

    def set_hyper(self, lr, momentum=0.9, weight_decay=0.0):
        lr_m, lr_s = quantize_scalar(lr, LR_BITS)
        mu_m, mu_s = quantize_scalar(momentum, LR_BITS)
        wd_m, wd_s = quantize_scalar(weight_decay, LR_BITS)
        ps = self.program.par_slot
        self.table[ps:ps + isa.PAR["COUNT"]] = [lr_m, lr_s, mu_m, mu_s, wd_m, wd_s]
        for L in self.program.layers:
            # the gradient's resolution is exactly what the update can use (docs/numeric.md)
            self.table[L.slot_g] = int(self.table[L.slot_m]) + lr_s - LR_BITS
        self.table.sync_to_device()

    def layer_arrays(self):
        """The DDR-resident training state of every layer (synced from the device)."""
        self._sync_layers("from")
        out = {name: np.array(self.views[name]) for name in self._state_regions()}
        out["table"] = np.array(self.table)
        return out

    def load_layer_arrays(self, arrays):
        for name, value in arrays.items():
            view = self.views[name]
            if view.shape != value.shape or view.dtype != value.dtype:
                raise ValueError(f"{name}: expected {view.shape} {view.dtype}, got {value.shape} {value.dtype}")
            view[...] = value
        self._sync_layers("to")

    def state(self):
        """The model's fixed-point state in dense layout (sparse layers
        scattered back, pruned entries 0), read back from the device, with
        the exponents of the host's table, which is authoritative (the host
        rewrites the device's table from it before every step). Nothing is
        written. {"act_exp": [every stage output's exponent, 0 the input],
        "layers": per Conv2d/Linear {"w": int8, "mask": uint8, "master":
        int32 weights, "bias": int32 or None, "e_w", "e_m"}, "bn": per batch
        norm {"a", "b": int32, "e_a", "e_b"}}."""
        self._sync_layers("from")
        p, table = self.program, np.array(self.table)
        layers = []
        for L in p.layers:
            master = np.array(self.views[L.region("master")])
            dense = [L.scatter(np.array(self.views[L.region(k)]).reshape(-1)).reshape(L.w_shape)
                     for k in ("w", "mask")]
            layers.append({"w": dense[0].astype(np.int8), "mask": dense[1].astype(np.uint8),
                           "master": L.scatter(master[:L.n_w]).reshape(L.w_shape).astype(np.int32),
                           "bias": master[L.n_w:].astype(np.int32) if L.n_b else None,
                           "e_w": int(table[L.slot_w8]), "e_m": int(table[L.slot_m])})
        bn = [{"a": np.array(self.views[f"bnA{k}"]).astype(np.int32),
               "b": np.array(self.views[f"bnB{k}"]).astype(np.int32),
               "e_a": int(table[slot_a]), "e_b": int(table[slot_b])}
              for k, (slot_a, slot_b) in enumerate(p.bn_slots)]
        return {"act_exp": [int(table[s]) for s in p.act_slots], "layers": layers, "bn": bn}

    def float_params(self, state=None):
        """Dequantized master weights, as float arrays per layer ({"w", "b"});
        of `state` (a state() result) when given, else read now."""
        layers = (state or self.state())["layers"]
        return [{"w": hostlib.from_master(d["master"], d["e_m"]),
                 "b": hostlib.from_master(d["bias"], d["e_m"]) if d["bias"] is not None else None}
                for d in layers]

    def float_bn(self, state=None):
        """Each frozen batch norm's dequantized per-channel (scale, shift)."""
        return [(hostlib.from_master(d["a"], d["e_a"]), hostlib.from_master(d["b"], d["e_b"]))
                for d in (state or self.state())["bn"]]

    def masks(self):
        """Dense keep-masks of every layer (bool, weight-shaped)."""
        self._sync_layers("from")
        return [L.scatter(np.array(self.views[L.region("mask")])).reshape(L.w_shape).astype(bool)
                for L in self.program.layers]

    def adopt(self, old, masks=None):
        """Take over the training state of `old`, a runtime of the same model
        (dense or sparse), applying `masks` (None per layer keeps its mask):
        pruned weights and their momentum become exactly zero, sparse layers
        keep only their kept entries. Exponents and windows carry over."""
        if old.program.table_len != self.program.table_len:
            raise ValueError("adopt needs a program of the same model (same parameter table)")
        arrays = old.layer_arrays()
        masks = masks or [None] * len(self.program.layers)
        for Lo, L, mask in zip(old.program.layers, self.program.layers, masks):
            keep = Lo.scatter(arrays[Lo.region("mask")]).astype(bool)
            if mask is not None:
                keep &= np.asarray(mask, bool).reshape(-1)
            for kind in ("master", "mom"):
                src = arrays[Lo.region(kind)]
                dense = Lo.scatter(src[:Lo.n_w]) * keep
                dst = self.views[L.region(kind)]
                dst[:L.n_w] = L.gather(dense)
                dst[L.n_w:] = src[Lo.n_w:]
            self.views[L.region("grad")][...] = 0
            self.views[L.region("mask")][...] = L.gather(keep.astype(np.uint8))
        self.table[...] = arrays["table"]
        for name in self._state_regions():
            if name.startswith("bn"):  # layer regions were moved above
                self.views[name][...] = arrays[name]
        for L in self.program.layers:
            self._derive_w8(L)
        self.exps.load_state(old.exps.state())
        self.iteration = old.iteration
        self._sync_layers("to")

    def memory_report(self):
        """Bytes of DDR per layer for its training state (weights, master,
        momentum, gradient, mask, index) and what the dense layout would take."""
        rows = []
        for L in self.program.layers:
            used = sum(self.program.plan[L.region(k)].nbytes for k in ("w", "master", "mom", "grad", "mask")
                       + (("idx",) if L.sparse else ()))
            dense = L.n_dense * (1 + 4 + 4 + 4 + 1) + L.n_b * 12
            rows.append((L.j, used, dense))
        return rows

    # -- iterations -----------------------------------------------------------
    def _run(self, segment):
        start, count = self.program.segments[segment]
        off = self.program.plan["program"].offset + start * isa.INSN_BYTES
        self.accel.run(off, count, self.program.insns, start)

    def _prepare_table(self):
        p = self.program
        for slot in set(p.act_slots) | {s for s in p.err_slots[:-1] if s is not None} | set(p.part_slots):
            if slot not in p.const_slots:
                self.table[slot] = self.exps.exponent(slot, int(self.table[slot]))
        for L in p.layers:
            if not L.frozen:  # a frozen layer has no UPDATE: its int8 copy keeps its exponent
                self.table[L.slot_w8_next] = self.exps.exponent(L.slot_w8_next, int(self.table[L.slot_w8]))

    def _load_batch(self, xq):
        x = self.views["act0"]
        n = xq.shape[0]
        x[:n] = xq
        if n < x.shape[0]:
            x[n:] = 0
        x.sync_to_device()

    def _logits(self):
        z = self.views[self.logits_name]
        z.sync_from_device()
        e = int(self.table[self.program.act_slots[-1]])
        z = z.view(np.ndarray)  # plain arrays from here: the loss's numpy calls skip DeviceBuffer's hooks
        return z.reshape(z.shape[0], -1).astype(np.float64) * 2.0 ** e

    def train_step(self, xq, labels):
        """One iteration on a full batch of int8 images (exponent -7)."""
        p = self.program
        if xq.shape[0] != p.batch:
            raise ValueError(f"train_step needs a full batch of {p.batch}, got {xq.shape[0]}")
        self._load_batch(xq)
        self._prepare_table()
        self.table.sync_to_device()
        self._run("fp")
        logits = self._logits()
        loss, g = softmax_xent(logits, labels)
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at iteration {self.iteration}")
        if p.model.stages[-1].relu:
            g *= logits > 0
        t = top_of(g)
        e_err = (t - 7) if t is not None else -14
        err = self.views[self.err_last]
        if self.loss_rounding == "stochastic":
            err[...] = stochastic_quantize(g, e_err, self.seed, self.iteration).reshape(err.shape)
        else:
            hostlib.quantize(g.reshape(err.shape), e_err, out=err)
        err.sync_to_device()
        self.table[p.err_slots[-1]] = e_err
        self.table.sync_to_device()
        self._run("bp")
        self._observe()
        for L in p.layers:  # the int8 copies in DDR now have these exponents
            self.table[L.slot_w8] = self.table[L.slot_w8_next]
        self.table.sync_to_device()
        self.iteration += 1
        return loss, logits

    def _observe(self):
        self.stats.sync_from_device()
        s = self.stats.view(np.ndarray)
        max_abs, exp = s["max_abs"].tolist(), s["exp"].tolist()
        for k, slot in enumerate(self.program.observe):
            if slot >= 0:
                self.exps.observe(slot, top(max_abs[k], exp[k]))
        self.sat_totals += s["sat"]
        self.count_totals += s["count"]

    def predict_logits(self, xq):
        """Logits of any number of int8 images, FP only (no statistics kept)."""
        b = self.program.batch
        out = []
        for i in range(0, xq.shape[0], b):
            chunk = xq[i:i + b]
            self._load_batch(chunk)
            self._run("fp")
            out.append(self._logits()[:chunk.shape[0]])
        return np.concatenate(out) if out else np.zeros((0, self.program.model.num_classes))

    def saturation_report(self):
        """Per instruction kind and layer: fraction of stores that saturated since the last reset."""
        rows = []
        for k, insn in enumerate(self.program.insns):
            if self.count_totals[k]:
                rows.append((self.program.insn_stage[k], isa.op_name(int(insn["op"])),
                             self.sat_totals[k] / self.count_totals[k]))
        self.sat_totals[...] = 0
        self.count_totals[...] = 0
        return rows

    def close(self):
        self.arena.freebuffer()
