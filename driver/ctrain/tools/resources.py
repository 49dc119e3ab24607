"""Resource estimate of the accelerator on a board (docs/overlay.md, "Resource estimate").

Counts what the HLS sources instantiate, for one board's configuration header,
with the rules below; nothing is a hand-kept table, so adding or resizing an
array, unrolling a loop or adding a multiplier changes the estimate.

Copies: every function exists once per call site, per copy of its caller and
per iteration of the unrolled loops around the call (inner loops of a
pipelined loop count as unrolled: HLS unrolls them), except that `#pragma
HLS ALLOCATION function instances=f limit=N` in a caller caps its copies of a
non-inline f at N per caller copy (UG1399, pragma HLS allocation: all call
sites share the N RTL instances), counting the call sites in the inline
functions the caller calls (a unit's stages: HLS inlines them into the caller
before it allocates; hls_source.Sources.alloc_scope). HLS may share more than this; the estimate
does not assume it. A shared instance's datapath inputs take a k:1 select
for its k calls (shared_selects).

Board choices: `#if EXPR` on the configuration's integer macros is taken as
that board's build takes it (ctrain.hls_source.synthesis_branches).

Memories (`items` of kind "array"): every array declared in a synthesised
function, with dims evaluated per board, split into banks by its
ARRAY_PARTITION pragmas (complete: one bank per index of that dim; cyclic or
block factor F: F banks) and widened by ARRAY_RESHAPE. Per bank:
  - depth 1 (fully partitioned): registers, not counted here;
  - BIND_STORAGE impl=uram: URAM288 blocks, ceil(depth/4096) x ceil(width/72);
  - impl=lutram, or no binding and at most LUTRAM_MAX_BITS bits: LUTRAM,
    2 LUTs per 64 x 1 bits (RAM64X1D: a read and a write port), 1 with
    BIND_STORAGE type=ram_1p (RAM64X1S; UG474/UG574 "Distributed RAM");
  - otherwise BRAM: the cheapest RAMB18 shape of 16Kx1, 8Kx2, 4Kx4, 2Kx9,
    1Kx18, 512x36 (simple dual port: HLS's RAM_2P; BIND_STORAGE
    type=ram_t2p, true dual port, has no 512x36 shape, UG573), ceil(depth/d)
    x ceil(width/w) RAMB18s; two RAMB18s make one BRAM36 tile.
UG1399 documents no size below which an unbound array becomes LUTRAM (impl
auto leaves it to the tools); the one documented bit threshold is
config_storage's auto_srl_max_bits, 1024. We take 1024 bits: larger banks go
to BRAM, which is the pessimistic reading for BRAM, the scarce resource.
A buffer declared twice, or with an extra dimension of 2, counts twice by
these rules (its declaration says so).

DATAFLOW channels: an array of a function with `#pragma HLS DATAFLOW` that
the function passes to a call (a process) is a channel, by default a
ping-pong buffer (PIPO) of two copies (UG1399, "Specifying Arrays as
Ping-Pong Buffers or FIFOs"); `STREAM variable=x type=pipo depth=N` makes N
copies, type=shared or unsync one. The copies of a bank are one memory of N
times its depth: Vitis HLS builds a PIPO as one `_memcore` RAM whose address
carries the buffer index (`addr << 1 | iptr` in the RTL it generates), so a
channel costs what a `[2]` array of the same banks did; type=fifo (or STREAM without a type) a
FIFO of `depth` elements. FIFOs (kind "fifo": those, and every
`hls::stream<T>` declared, depth from its STREAM pragma, 2 by default):
shift registers, one SRLC32E LUT per 32 deep x 1 bit, when BIND_STORAGE
impl=srl or unbound and at most 1024 bits; LUTRAM, BRAM or URAM as bound,
BRAM when unbound and larger.

Multipliers (kind "mul"): every binary `*` between two non-constant operands
(a literal, a macro or an unrolled loop's index makes it a constant multiply:
shifts and adds, not counted; `x * ((T)1 << s)` is a shift, LLVM's
instcombine turns it into one). DSPs per multiplier from the operand widths
(declared types; a `(prod_t)` cast is int8; a cast to a wider type, as
`(int64_t)a * b`, widens the kept product): signed a x b bits on DSP48E2
(27x18) takes min(ceil(a/26) ceil(b/17), ceil(b/26) ceil(a/17)) slices,
DSP48E1 (25x18) the same with 24. A plain int8 x int8 is one DSP. Operands
declared 64-bit count as 64-bit even when they hold 32-bit values
(pessimistic).

Packed products: a call of PACKED_MUL, `mul2(a, b0, b1, p0, p1)` of
hls/mac2.h, recognised by name, is per copy two int8 products from ONE DSP
where the board's CTRAIN_DSP_INT8 is 2 (DSP48E2: b1 * 2^18 + b0 in the
27-bit port times a, Xilinx WP486), two DSPs where it is 1 (DSP48E1); its
body is not counted again. CTRAIN_DSP_INT8 2 on a DSP48E1 is refused.

Peaks (`Estimate.peak`, GOP/s): the design's, 2 x the int8 products per
cycle of its largest multiplier array x CTRAIN_CLOCK_MHZ. Per PE loop
(PE_LOOPS): the non-zero operands it writes into the MAC array's b0 and b1
inputs (MAC_FUNCTIONS, hls/mac_array.h; at most the products the array's
units make) plus the products of its own multipliers (the position path's
multiply-accumulates); every multiplier counts, whether or not every step
uses it (the position path's second product, a pair's second tile or kept
weight: a multiplier idle is still in the peak an efficiency is against);
the larger loop's (one instruction at a time); the chip's, DSPs x CTRAIN_DSP_INT8 x 2 x
CTRAIN_PART_CLOCK_MHZ, the clock a full-chip int8 DSP array closes on the
part (sources in each config header). The design's must be at least
PE_PEAK_MIN_FRACTION (40%) of the chip's.

A product assigned to a variable that `#pragma HLS BIND_OP variable=v op=mul
impl=fabric` names (UG1399, pragma HLS bind_op: impl=fabric, the operator in
fabric logic) takes no DSP but fabric_mul_luts(a, b) LUTs.

Dividers (kind "div", LUTs): `/` and `%` by a variable: a W-bit divider of W
stages of a W+1-bit subtractor, W x (W+1) LUTs; by a constant that is not a
power of two: one multiplier (reciprocal). Powers of two are free.

Multiplexers (kind "mux", LUTs): a read of a partitioned array with a
variable index in a partitioned dimension selects among N banks:
width x ceil((N-1)/3) LUT6s (a LUT6 is a 4:1 mux), the width the element's
(a lane of a word ARRAY_RESHAPE widened: each unrolled copy selects its
own lanes); a read at a variable
index in a dimension that ARRAY_RESHAPE complete folds into the word selects
among its N elements the same way (element width x ceil((N-1)/3)). A write
at a variable index there is a byte-enabled write of its element's lanes,
not counted. For a cyclic (or block)
partition by F the same holds for reads, and for the writes of unrolled
copies (each bank picks its copy's data), unless the index provably keeps
every copy in one bank: a sum of constants, unrolled loop indices, products
with a multiple of F and variables that only hold multiples of F (set to 0
or a multiple, stepped by a multiple; locals assigned once are read
through), e.g. `t * W + j` or `k + j` with `k += W`, for a partition by W.
A block partition at a variable index always selects.

AXI adapters (kind "axi", `axi_adapters`): each m_axi bundle of the top
beyond the first (CTRAIN_DDR_PORTS) is counted, pessimistically:
MAXI_ADAPTER_LUT LUTs and its two burst FIFOs (read data, write data with
strobes) as BRAM (UG1399 "M_AXI Resources"). The first adapter and the
s_axilite slave are in the margin, as before.

Fabric arithmetic (kind "add", `fabric_arith`, since session 14): every
value `+`, `-`, `+=`, `-=` and every shift by a run-time amount in a
pipelined loop (or a pipelined copy of a function), per unrolled copy of its
loop and per copy of the function, followed through the inline functions it
calls (a parameter the call site passes a constant is a constant there, so
`w >> (8 * l)` with l an unrolled lane is wiring; a template whose types
depend on its parameters, q_narrow<B>'s `ap_int<B + 2>`, at each call's
arguments, its items named with them: q_narrow<7>). A W-bit adder or
subtractor is W LUTs (a LUT6 per bit on the carry chain, UG574), W the wider
operand's declared width, no more than the target's where the statement
assigns to a declared variable (the low bits of a sum need only the
operands' low bits) and the target's for `+=`/`-=`; a W-bit shift by a
run-time amount log2(W) stages of 2:1, two per LUT6 (`shifter_luts`; W the
shifted variable's declared width, however wide; by `K * s`, K a power of
two, log2(W / K) stages: the AGUs' byte funnels), a
constant shifted by one a decoder, W LUTs; `x * ((T)1 << s)` a shift;
`x++` an incrementer, W LUTs. A shift whose result is used at fewer bits
(a cast to a narrower type, a narrower target) keeps only those bits plus
what its later stages shift in (`shifter_luts(w, step, out)`: synthesis
trims the rest). A `+` of a DSP-made product `T m = a * b;` that only it
reads, at most DSP_ALU_BITS wide, is the slice's post-adder (UG901
multiply-add/-accumulate), 0 LUT. An add assigned to a variable that
`#pragma HLS BIND_OP variable=v op=add impl=dsp` names (`v += x`, `T v = a
+ b;`) is a DSP slice's ALU: a slice per DSP_ALU_BITS of the sum, 0 LUT. A call's result has its declared
return type's width. A barrel shifter written as log stages
of conditional copies (`for (s = 0; (1 << s) < N; s++) if ((a >> s) & 1)
... x[p] = y[p];`) is elements x bits x ceil(stages / 2) LUTs. Index and
address arithmetic inside `[]` (since session 28) at the bits of the
dimension it addresses (the operands' where its size is unknown). Not
counted: the banks' address selects, loop headers, an unrolled lane added
to a base aligned to the lanes (an OR), the sequential FSMs' arithmetic (control), conditional
assignments (`if (c) x = y;`: a register's enable or its next-state
logic). Selects (since session 25): every datapath `c ? a : b` a W-bit
2:1 select, W LUTs (select_luts: a LUT6 a 4:1 mux, as the bank
multiplexers; two bits in one LUT6_2 not assumed), a chain of them (an arm
a select) one n:1 select, ceil((n - 1) / 3) LUTs a bit; W the variable
leaves' wider declared width (a condition arm one bit; at most
SELECT_BITS, a beat), no more than the cast the whole select takes, the
function's return type for `return c ? a : b;` or the declared target;
nothing where the condition is constant per copy (an unrolled lane's
wiring) or both arms are constants; 0 where one arm is 0 and the select
is an operand of a `+`/`-` or the right side of `+=` (`(init ? 0 : acc) +
m`: the adder's LUT takes the gate, the DSP slice its reset). A running
extreme `if (a > b) b = a;` that unrolled copies chain (a lane's
statistics into one record) is a W-bit 2:1 select a copy; alone, b's
register enable. Comparators (since session 16; `a < b`, `x == k`, written with
a space each side): two variables ceil(W / 2) LUTs (the carry chain, a LUT6
per two bit pairs; equality taken the same), against a constant ceil(W /
3), `< 0` and `>= 0` nothing (the sign bit), another compare with 0 ceil(W /
6) (an OR of the bits), W the variable operands' wider declared width
(`comparator_luts`); a variable against each unrolled lane's index (a
thermometer code, `l <= lo` for every lane l < N) one LUT6 a lane for
log2(N) <= 5 low bits (else their constant compare and one more), and the
OR of the W - log2(N) higher bits once, shared by the lanes. The packed multiply's second product is
sign-corrected in fabric (PACKED_FIX_BITS). Declared widths are the
pessimistic reading: HLS narrows some operations it can bound; the sources
declare narrow types where the bounds are known (sconv.cpp spp_acc_t).

What is not counted: registers, control FSMs and their arithmetic,
conditional assignments, the first AXI adapter: LUT "used" is a lower bound for the
parts listed, the margin covers the rest only loosely (docs say so).
"""
import copy
import math
import os
import re
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

from .. import boards
from ..hls_source import Sources, enclosing, match_brace, match_paren, split_args, substitute
from ..overlay_src import config_dir, hls_dir, isa_header

#: Fraction of every resource a design may use (a 15% margin for place and route).
FIT_FRACTION = 0.85
#: Unbound banks of at most this many bits go to LUTRAM (see the module docstring).
LUTRAM_MAX_BITS = 1024
#: RAMB18 shapes (depth, width); 512x36 is the simple-dual-port shape.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
URAM_SHAPE = (4096, 72)
#: DSP multiplier port widths (signed): (A, B) of DSP48E2 and DSP48E1.
DSP_PORTS = {"DSP48E2": (27, 18), "DSP48E1": (25, 18)}
#: Loops whose multipliers are the PE arrays (tests check they still exist):
#: each feeds the MAC array (MAC_FUNCTIONS) once per step.
PE_LOOPS = {"pass_step": "pe_array", "step": "sp_steps"}
#: The MAC array of hls/mac_array.h, `mac_array(a, b0, b1, p0, p1)` (the
#: units dense and sparse share) and `mac_array_sp` (the position path's
#: own): the PE loops' products are the operands they write into the b0 and
#: b1 inputs (pe_products).
MAC_FUNCTIONS = ("mac_array", "mac_array_sp", "mac_array_pos")
#: The packed-multiply helper of hls/mac2.h: a*b0 and a*b1 from one DSP48E2
#: (CTRAIN_DSP_INT8 2), recognised by name (module docstring, "Multipliers").
PACKED_MUL = "mul2"
#: The packed multiply's fabric part (hls/mac2.h, WP486): the pre-adder is
#: the DSP48E2's (A:D), the second product's sign correction `p1 = (wide >>
#: 18) + lo[17]` a 17-bit adder in fabric per DSP.
PACKED_FIX_BITS = 17
#: The design's PE peak must be at least this fraction of the chip's int8 peak.
PE_PEAK_MIN_FRACTION = 0.4
RESOURCES = ("dsp", "bram36", "uram", "lut")
#: LUTs of one m_axi adapter of Vitis HLS, taken pessimistically: a public
#: Vitis HLS csynth report (an arithmetic microbenchmark's README, found
#: through the code index; the repository is not named there) lists its
#: 512-bit m_axi adapters at 1,052 LUT, 881 FF, 16 BRAM_18K each and its
#: 64-bit ones at 766 LUT, 566 FF, 4 BRAM_18K; the wider figure, rounded up
#: for the s_axilite offset pair (a 64-bit register and its read mux) and the
#: port's share of the AXI-lite decode, whatever the port's width.
MAXI_ADAPTER_LUT = 1200
#: The adapter's read- and write-data FIFOs (UG1399, "M_AXI Resources":
#: buff_rdata, buff_wdata) hold the requests in flight: num_*_outstanding x
#: max_*_burst_length beats ("Controlling AXI4 Burst Behavior"), read from
#: the bundle's pragma, UG1399's default 16 where it names none; the read
#: data with its last/response bits, the write data with its byte strobes.
MAXI_DEFAULT = 16


@dataclass
class Item:
    kind: str        # array, mul, div, mux
    name: str        # function:array, or function:loop:expression
    count: int       # copies (banks x instances, or sites x instances)
    detail: str
    dsp: float = 0
    bram36: float = 0
    uram: float = 0
    lut: float = 0
    names: list = field(default=None, repr=False)   # identifiers of an operator's expression
    products: int = 0   # int8 x int8 products per cycle (kind "mul")


@dataclass
class Estimate:
    board: str
    resources: dict            # resource -> {"used": n, "available": n}
    items: list = field(default_factory=list)
    peak: dict = field(default_factory=dict)   # GOP/s: "pe" and "chip_int8" (see peaks())

    @property
    def fits(self):
        return all(r["used"] <= FIT_FRACTION * r["available"] for r in self.resources.values())

    @property
    def peak_fraction(self):
        """The design's PE peak over the chip's int8 peak."""
        return self.peak["pe"] / self.peak["chip_int8"]

    def over(self):
        """Resources above FIT_FRACTION of the chip."""
        return [k for k, r in self.resources.items() if r["used"] > FIT_FRACTION * r["available"]]


# ----------------------------------------------------------------- memories

def bram18_per_bank(depth, width, true_dual=False):
    """RAMB18s of a depth x width bank; true dual port (ram_t2p) has no
    512 x 36 shape, that width being simple dual port only (UG573)."""
    shapes = BRAM18_SHAPES[:-1] if true_dual else BRAM18_SHAPES
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in shapes)


def uram_per_bank(depth, width):
    return math.ceil(depth / URAM_SHAPE[0]) * math.ceil(width / URAM_SHAPE[1])


def lutram_luts(depth, width, ports=2):
    """Distributed RAM: per 64 x 1 bits one LUT6 single port (RAM64X1S), two
    for a read and a write port (RAM64X1D) (UG474 / UG574, "Distributed RAM")."""
    return ports * math.ceil(depth / 64) * width


_DECL = re.compile(r"^[ \t]*(static\s+)?(?:const\s+)?([A-Za-z_][\w:]*(?:\s*<[^;>]*>)?)\s+([^;=()]+);",
                   re.M)


#: A leading C cast `(T)` or `(const T)`, T a type name (template arguments
#: and several words allowed), an operand after it: `(k >> 1) * W` is none.
LEAD_CAST = re.compile(r"^\(\s*(?:const\s+)?[A-Za-z_][\w:]*(?:\s*<[^()<>;]*>)?(?:\s+[A-Za-z_]\w*)*\s*\)\s*(?=[\w(])")


def _pragmas(body, kind):
    out = []
    for m in re.finditer(r"#pragma\s+HLS\s+" + kind + r"\b([^\n]*)", body, re.I):
        opts = dict(re.findall(r"(\w+)\s*=\s*(\S+)", m.group(1)))
        opts = {k.lower(): v for k, v in opts.items()}
        bare = m.group(1).lower().split()
        for t in ("complete", "cyclic", "block"):
            if t in bare:
                opts.setdefault("type", t)
        out.append(opts)
    return out


@dataclass
class Array:
    function: str
    name: str
    elem: str
    width: int
    dims: list           # evaluated sizes
    banks: int
    bank_dims: list      # sizes left per bank
    partitioned: set     # 1-based dims split into banks completely
    impl: str            # bram, uram, lutram or "" (auto)
    ports: int = 2       # 1: BIND_STORAGE type=ram_1p
    cyclic: dict = field(default_factory=dict)   # 1-based dim -> (type, factor): cyclic/block banks
    true_dual: bool = False   # BIND_STORAGE type=ram_t2p: two read/write ports
    buffers: int = 1     # copies of a DATAFLOW channel (2: ping-pong)
    reshaped: set = field(default_factory=set)   # 1-based dims folded into the word completely
    lanes: int = 1       # elements per word (the product of the ARRAY_RESHAPE factors)
    reshaped_by: dict = field(default_factory=dict)   # 1-based dim -> (type, factor): cyclic/block reshapes

    @property
    def depth(self):
        return math.prod(self.bank_dims)


def arrays(src):
    """Every on-chip array declared in a synthesised function, banked by its pragmas."""
    out = []
    for f in src.functions.values():
        for m in _DECL.finditer(f.body):
            tname = m.group(2).strip()
            sm = re.fullmatch(r"hls::stream\s*<\s*(.+?)\s*>", tname)
            if sm:
                for decl in split_args(m.group(3)):
                    dm = re.match(r"(\w+)\s*((?:\[[^\]]+\])*)", decl)
                    if dm:
                        out.append(_fifo(src, f, dm.group(1), sm.group(1),
                                         [src.macros.eval(d) for d in re.findall(r"\[([^\]]+)\]", dm.group(2))]))
                continue
            if not src.types.known(tname) and tname not in src.types.array_typedefs:
                continue
            for decl in split_args(m.group(3)):
                dm = re.match(r"(\w+)\s*((?:\[[^\]]+\])*)\s*$", decl)
                if not dm:
                    continue
                dims = re.findall(r"\[([^\]]+)\]", dm.group(2))
                elem = tname
                if tname in src.types.array_typedefs:
                    elem, tdims = src.types.array_typedefs[tname]
                    dims = dims + tdims
                if not dims:
                    continue
                sizes = [src.macros.eval(d) for d in dims]
                if any(s is None for s in sizes):
                    raise ValueError(f"{f.file}: {f.name}: array {dm.group(1)}: dims {dims} are not "
                                     "constants of the configuration")
                a = _bank(src, f, dm.group(1), elem, sizes)
                out.append(_channel(src, f, a) if DATAFLOW.search(f.body) else a)
    return out


DATAFLOW = re.compile(r"#pragma\s+HLS\s+DATAFLOW\b", re.I)


def _channel(src, f, a):
    """An array of a DATAFLOW function that it hands to a process (a call's
    argument) is a channel (UG1399, "Specifying Arrays as Ping-Pong Buffers
    or FIFOs"): a ping-pong buffer (PIPO, two copies) by default; `STREAM
    variable=x type=pipo depth=N` N copies, `type=shared`/`unsync` one,
    `type=fifo` (or a STREAM pragma without type) a FIFO of `depth` elements."""
    if not any(caller == f.name and a.name in [x.strip() for x in args]
               for caller, _, _, args, _ in src.call_sites()):
        return a
    opts = next((p for p in _pragmas(f.body, "STREAM") if p.get("variable") == a.name), None)
    kind = (opts or {}).get("type", "pipo" if opts is None else "fifo").lower()
    if kind == "fifo":
        return _fifo(src, f, a.name, a.elem, [], depth=src.macros.eval(opts.get("depth", "2")) or 2)
    a.buffers = 1 if kind in ("shared", "unsync") else src.macros.eval((opts or {}).get("depth", "2")) or 2
    return a


@dataclass
class Fifo:
    function: str
    name: str
    elem: str
    width: int
    depth: int
    count: int           # streams declared (an array of streams)
    impl: str            # BIND_STORAGE impl (srl, lutram, bram, uram) or "" (auto)


def _fifo(src, f, name, elem, dims, depth=None):
    """An hls::stream (or an array of them), or an array a STREAM pragma makes
    a FIFO: `STREAM variable=s depth=N` elements each (2 by default, UG1399)."""
    width = src.types.width(elem)
    if width is None or any(d is None for d in dims):
        raise ValueError(f"{f.file}: {f.name}: stream {name}: unknown element type or size")
    opts = next((p for p in _pragmas(f.body, "STREAM") if p.get("variable") == name), {})
    if depth is None:
        depth = src.macros.eval(opts.get("depth", "2")) or 2
    impl = next((p.get("impl", "").lower() for p in _pragmas(f.body, "BIND_STORAGE")
                 if p.get("variable") == name), "")
    return Fifo(f.name, name, elem, width, depth, math.prod(dims) if dims else 1, impl)


def _fifo_item(q, copies):
    """A FIFO: shift registers (SRLC32E: 32 deep x 1 bit per LUT) when impl=srl,
    or auto and at most LUTRAM_MAX_BITS bits (config_storage fifo
    auto_srl_max_bits); LUTRAM when impl=lutram; else BRAM or URAM banks."""
    n = q.count * copies
    it = Item("fifo", f"{q.function}:{q.name}", n, f"{q.depth} x {q.width} bit FIFO")
    if q.impl == "srl" or (q.impl in ("", "auto") and q.depth * q.width <= LUTRAM_MAX_BITS):
        it.lut = n * math.ceil(q.depth / 32) * q.width
        it.detail += ", shift registers"
    elif q.impl == "lutram":
        it.lut = n * lutram_luts(q.depth, q.width)
        it.detail += ", LUTRAM"
    elif q.impl == "uram":
        it.uram = n * uram_per_bank(q.depth, q.width)
        it.detail += ", URAM"
    else:
        it.bram36 = n * bram18_per_bank(q.depth, q.width) / 2
        it.detail += f", {bram18_per_bank(q.depth, q.width)} RAMB18 each"
    return it


def _bank(src, f, name, elem, sizes):
    width = src.types.width(elem)
    if width is None:
        raise ValueError(f"{f.file}: {f.name}: array {name}: unknown element type {elem!r}")
    dims, banks, parted, impl, cyc = list(sizes), 1, set(), "", {}
    for p in _pragmas(f.body, "ARRAY_PARTITION"):
        if p.get("variable") != name:
            continue
        which = int(p.get("dim", 1))
        for d in (range(1, len(dims) + 1) if which == 0 else [which]):
            if p.get("type", "complete") == "complete":
                banks *= dims[d - 1]
                dims[d - 1] = 1
                parted.add(d)
            else:
                fac = src.macros.eval(p.get("factor", "1")) or 1
                banks *= fac
                dims[d - 1] = math.ceil(dims[d - 1] / fac)
                if fac > 1:
                    cyc[d] = (p["type"], fac)
    reshaped, lanes, reshaped_by = _reshapes(src, f, name, dims)
    width *= lanes
    ports, tdp = 2, False
    for p in _pragmas(f.body, "BIND_STORAGE"):
        if p.get("variable") == name:
            impl = p.get("impl", "").lower()
            ports = 1 if p.get("type", "").lower() == "ram_1p" else 2
            tdp = p.get("type", "").lower() == "ram_t2p"
    return Array(f.name, name, elem, width, sizes, banks, dims, parted, impl, ports, cyc, tdp,
                 reshaped=reshaped, lanes=lanes, reshaped_by=reshaped_by)


def _reshapes(src, f, name, dims):
    """(dims folded whole, elements per word, {dim: (type, factor)} of the
    cyclic and block folds) of array `name`'s ARRAY_RESHAPE pragmas; dims
    shrink in place to the words left."""
    reshaped, lanes, reshaped_by = set(), 1, {}
    for p in _pragmas(f.body, "ARRAY_RESHAPE"):
        if p.get("variable") != name:
            continue
        which = int(p.get("dim", 1))
        for d in (range(1, len(dims) + 1) if which == 0 else [which]):
            fac = dims[d - 1] if p.get("type", "complete") == "complete" else (
                src.macros.eval(p.get("factor", "1")) or 1)
            if p.get("type", "complete") == "complete" and fac > 1:
                reshaped.add(d)
            elif fac > 1:
                reshaped_by[d] = (p["type"], fac)
            lanes *= fac
            dims[d - 1] = math.ceil(dims[d - 1] / fac)
    return reshaped, lanes, reshaped_by


def _array_item(a, copies):
    if isinstance(a, Fifo):
        return _fifo_item(a, copies)
    # a channel's buffers are one memory per bank, `buffers` times as deep
    # (the PIPO memcore: the buffer index is part of the address)
    n = a.banks * copies
    depth, width = a.depth * a.buffers, a.width
    shape = f"{'x'.join(map(str, a.dims))} {a.elem} -> {a.banks} bank(s) of {depth} x {width} bit"
    if a.buffers != 1:
        shape += f" ({a.buffers} buffers of a DATAFLOW channel)"
    it = Item("array", f"{a.function}:{a.name}", n, shape)
    if depth == 1:
        it.detail += ", registers"
    elif a.impl == "uram":
        it.uram = n * uram_per_bank(depth, width)
        it.detail += ", URAM"
    elif a.impl == "lutram" or (a.impl in ("", "auto") and depth * width <= LUTRAM_MAX_BITS):
        it.lut = n * lutram_luts(depth, width, a.ports)
        it.detail += ", LUTRAM" + (" single port" if a.ports == 1 else "")
    else:
        per = bram18_per_bank(depth, width, a.true_dual)
        it.bram36 = n * per / 2
        it.detail += f", {per} RAMB18 each" + (" (true dual port)" if a.true_dual else "")
    if copies != 1:
        it.detail += f", x{copies} copies"
    return it


# ----------------------------------------------------------------- operators

#: One subscript of an operand, `[i]` or `[base[r] + t]` (one nested level):
#: never an unclosed `[`, so an operand inside a subscript (`base[r]` in
#: `tacc[r][base[r] + t]`) is not read as the array's own.
_SUBSCRIPT = r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]"


def _operand(text, side):
    """The operand text next to a binary operator: left (going back) or right."""
    if side == "right":
        t = text.lstrip()
        neg = re.match(r"-\s*(?=[\w(])", t)   # a negated operand (`x < -lim`): the same comparator
        if neg:
            t = t[neg.end():]
        m = re.match(r"(\((?:[^()]|\([^()]*\))*\)\s*)*[\w.]+(?:\s*" + _SUBSCRIPT + r"|\.\w+|\s*\((?:[^()]|\([^()]*\))*\))*|\((?:[^()]|\([^()]*\))*\)", t)
        return ("-" if neg and m else "") + (m.group(0) if m else "")
    t = text.rstrip()
    m = re.search(r"(\w+\s*\((?:[^()]|\([^()]*\))*\)|[\w.]+(?:\s*" + _SUBSCRIPT + r"|\.\w+)*|\((?:[^()]|\([^()]*\))*\))$", t)
    if not m:
        return ""
    s = m.group(0)
    cast = re.search(r"\(\s*[\w:<> ]+\s*\)\s*$", t[:m.start()])
    return (cast.group(0) + s) if cast else s


def _idents(expr):
    return [i for i in re.findall(r"[A-Za-z_][\w.]*", expr)]


class _Widths:
    """Declared bit widths of the names a function sees; `tmpl` the values of
    its template parameters where its types depend on them (`ap_int<B + 2>`
    in q_narrow<7>: 9 bits, instance_of)."""

    def __init__(self, src, f, tmpl=None):
        self.src = src
        self.tmpl = tmpl or {}
        self.names = {}
        decl_text = f.signature + "\n" + f.body
        for m in re.finditer(r"(?=\b([A-Za-z_]\w*(?:\s*<[^;>()]*>)?)\s*[&*]?\s+&?\s*([A-Za-z_]\w*))", decl_text):
            w = self.type_width(m.group(1))
            if not w and m.group(1) in src.types.array_typedefs:   # `pe_tapacc_t tacc`: its elements'
                w = src.types.width(src.types.array_typedefs[m.group(1)][0])
            if w and m.group(2) not in self.names:
                self.names[m.group(2)] = (w, m.group(1))
                # the declaration's further declarators: `int a = 0, b[N], c;`
                for name in _more_declarators(decl_text, m.start(2) + len(m.group(2))):
                    self.names.setdefault(name, (w, m.group(1)))

    def type_width(self, type_text):
        """Bits of a type, the template parameters replaced by their values."""
        return self.src.types.width(substitute(type_text, self.tmpl))

    def of_name(self, name):
        base = name.split(".")
        w, t = self.names.get(base[0], (None, None))
        if len(base) > 1:
            stype = (t or "").strip()
            fields = self.src.types.struct_fields.get(stype, {})
            return fields.get(base[-1], 32)
        return w if w is not None else 32

    def cast(self, expr):
        """Bits of the type an operand is cast to (0 when none)."""
        m = re.match(r"\s*\(\s*([\w:<> ]+?)\s*\)(?=\s*[\w(])", expr)
        return (self.type_width(m.group(1)) or 0) if m else 0

    def of(self, expr, cap=64):
        """Bits of an operand: its names' declared widths (at most `cap`); a
        cast narrows, never widens."""
        cast = re.match(r"\s*\(\s*([\w:<> ]+?)\s*\)(?=\s*[\w(])", expr)
        if cast and self.type_width(cast.group(1)):
            return min(self.type_width(cast.group(1)), self.of(expr[cast.end():], cap))
        call = re.match(r"\s*(\w+)\s*\(", expr)
        if call and call.group(1) in self.src.functions:
            # a call's result: its declared return type's width (32 unknown)
            ret = re.match(r"\s*(?:(?:static|inline|const)\s+)*([\w:]+(?:\s*<[^;()]*>)?)\s+\w+\s*\(",
                           self.src.functions[call.group(1)].signature)
            return min(self.src.types.width(ret.group(1)) or 32, cap) if ret else 32
        value = re.sub(r"\[[^\[\]]*\]", "", re.sub(r"\[[^\[\]]*\]", "", expr))   # indices are not the value
        ids = [i for i in _idents(value) if self.src.macros.eval(i) is None]
        if not ids:
            return 32
        return max(min(self.of_name(i), cap) for i in ids)


def _more_declarators(text, i):
    """The names declared after the first in a declaration statement that
    continues at text[i] (`, b[N], c = 0;`), or [] where text[i:] is not one
    (a parameter list goes on with a type, a statement ends at `;`)."""
    names, depth, j = [], 0, i
    if text[i:].lstrip().startswith("("):
        return names   # a function
    while j < len(text):
        ch = text[j]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return names
            depth -= 1
        elif ch in ";{}" and depth == 0:
            return names
        elif ch == "," and depth == 0:
            m = re.match(r"\s*([A-Za-z_]\w*)\s*([=\[;,])", text[j + 1:])
            if not m:
                return names
            names.append(m.group(1))
        j += 1
    return names


def dsp_per_mul(a, b, kind, result=None):
    """Slices for a signed a x b-bit product kept to `result` bits (C keeps
    max(a, b, 32): int arithmetic): the partial products (26 x 17 unsigned
    tiles on DSP48E2) that reach a kept bit, in the cheaper orientation."""
    pa, pb = DSP_PORTS[kind]
    ua, ub = pa - 1, pb - 1
    if a <= pa and b <= pb or a <= pb and b <= pa:
        return 1
    r = result or (a + b)

    def tiles(x, y):
        return sum(1 for i in range(0, x, ua) for j in range(0, y, ub) if i + j < r)
    return max(1, min(tiles(a, b), tiles(b, a)))


def _is_const(src, f, pos, expr):
    e = expr.strip()
    e = LEAD_CAST.sub("", e)   # a cast
    if src.macros.eval(e) is not None or e in f.template:
        return True
    return e in src.unrolled_vars(f, pos)


def _const_value(src, f, expr):
    """The values a constant divisor takes: a macro expression, or a template
    parameter's values at the call sites; None where unknown."""
    e = LEAD_CAST.sub("", expr.strip())
    if e in f.template:
        vals = src.template_values(f.name, e)
        return None if not vals or None in vals else vals
    v = src.macros.eval(e)
    return None if v is None else [v]


def operators(src, instances, dsp_kind):
    items = _operators(src, instances, dsp_kind)
    # sequential operators share one unit per FSM: a non-inline function copy;
    # an inline function's sequential copies are part of their callers' FSMs
    pools = {}
    for it in [i for i in items if i.name.endswith("(shared unit)")]:
        fn = it.name.split(":")[0]
        f = src.functions[fn]
        res = "dsp" if it.kind == "mul" else "lut"
        each = getattr(it, res) / it.count
        owners = [(fn, 1)] if not f.inline else src.fsm_owners(fn, it.names)
        for owner, k in owners:
            key = (owner, it.kind)
            if key not in pools or getattr(pools[key], res) < k * each:
                new = Item(it.kind, f"{owner}: shared {it.kind} unit(s), widest: {it.name[:-14]}", k,
                           it.detail.split(";")[0] + f"; {k} concurrent", )
                setattr(new, res, k * each)
                pools[key] = new
    out = [i for i in items if not i.name.endswith("(shared unit)")]
    for (owner, _), it in pools.items():
        copies = instances.get(owner, (0, 0))[1]
        if copies == 0:
            continue   # an FSM the build never instantiates (a path its board leaves out)
        it.count *= copies
        for r in ("dsp", "lut"):
            setattr(it, r, getattr(it, r) * copies)
        it.detail += f", x{copies} FSM copies"
        out.append(it)
    return out


def _operators(src, instances, dsp_kind):
    """Items for the multipliers and dividers of every function: each one inside
    a pipelined loop (or in a pipelined copy of the function) is its own unit;
    the others of one function copy share one unit per kind, sized for the
    widest (HLS binds operations of different FSM states to one unit)."""
    items = []
    for f in src.functions.values():
        pipe_copies, seq_copies = instances.get(f.name, (0, 0))
        if pipe_copies + seq_copies == 0 or f.name == PACKED_MUL:
            continue   # the packed multiply is counted per call (packed_muls)
        shared = {}   # kind -> Item of the widest sequential operator
        widths = None
        seen = set()
        for m in re.finditer(r"(?<![*/%=<>!&|+\-])([*/%])(?![*/=])", f.body):
            o = _operation(src, f, m)
            if o is None:
                continue
            op, pos, line, left, right, lc, rc = o
            names = re.findall(r"[A-Za-z_]\w*", left + " " + right)
            k = src.unroll_factor(f, pos, names)
            pc, sc = src.copies_of(f.name, names) if f.inline else (pipe_copies, seq_copies)
            n = k * (pc + sc) if src.in_pipeline(f, pos) else k * pc
            seq = 0 if src.in_pipeline(f, pos) else sc
            loops = [lp.label for lp in enclosing(f.loops, pos) if lp.label]
            where = f"{f.name}:{loops[-1] if loops else '-'}"
            key = (f.name, op, re.sub(r"\s+", "", left), re.sub(r"\s+", "", right))
            if key in seen:
                continue   # the same expression again in the function: HLS computes it once
            seen.add(key)
            widths = widths or _Widths(src, f)
            add = (items, shared, n, seq)
            if op == "*":
                _mul_item(f, widths, dsp_kind, add, where, line, left, right, lc or rc)
            else:
                _div_item(src, f, widths, dsp_kind, add, where, op, pos, left, right, rc)
        items.extend(shared.values())
    return items


def _operation(src, f, m):
    """(op, pos, line, left, right, left constant, right constant) of the
    operator match `m` in f's body, or None where it is no arithmetic to
    count: a preprocessor line, a pointer declaration or cast, a shift
    written as a product, or constants on both sides."""
    body = f.body
    op, pos = m.group(1), m.start()
    line_start = body.rfind("\n", 0, pos) + 1
    line = body[line_start:body.find("\n", pos)]
    if line.lstrip().startswith("#"):
        return None
    left = _operand(body[line_start:pos], "left")
    right = _operand(body[pos + 1:], "right")
    if not left or not right:
        return None
    lt = re.findall(r"[A-Za-z_]\w*", left)
    if op == "*" and lt and (src.types.known(lt[-1]) or lt[-1] in ("const", "return")) \
            and not left.rstrip().endswith((")", "]")):
        return None   # a pointer declaration or a cast to a pointer
    if op == "*" and re.match(r"\(\s*\(\s*[\w:]+\s*\)\s*1\s*<<", right):
        return None   # x * ((T)1 << s): a shift
    lc, rc = _is_const(src, f, pos, left), _is_const(src, f, pos, right)
    if lc and rc:
        return None
    return op, pos, line, left, right, lc, rc


def _mul_item(f, widths, dsp_kind, add, where, line, left, right, const):
    """A multiplier (see _add for `add`): none by a constant (shifts and
    adds), LUTs where BIND_OP puts it in fabric, else DSPs for its widths."""
    if const:
        return   # constant multiplication: shifts and adds
    wa, wb = widths.of(left), widths.of(right)
    lhs = re.match(r"\s*(?:const\s+)?(?:[\w:<>]+\s+)?([A-Za-z_]\w*)\s*=[^=]", line)
    int8 = int(wa <= 8 and wb <= 8)
    if lhs and lhs.group(1) in bound_variables(f.body, "mul", "fabric"):
        _add(*add, "mul", f"{where}: {left.strip()} * {right.strip()}",
             f"{wa}x{wb} bit in fabric (BIND_OP impl=fabric)", "lut", fabric_mul_luts(wa, wb),
             products=int8)
        return
    # a cast to a wider type widens the product (C: (int64_t)a * b)
    d = dsp_per_mul(wa, wb, dsp_kind, max(wa, wb, 32, widths.cast(left), widths.cast(right)))
    _add(*add, "mul", f"{where}: {left.strip()} * {right.strip()}", f"{wa}x{wb} bit", "dsp", d,
         products=int8)


def _div_item(src, f, widths, dsp_kind, add, where, op, pos, left, right, const):
    """A divider or remainder (see _add for `add`): none by powers of two
    (a shift), a reciprocal multiply by other known constants, else a
    divider core."""
    if const:
        vals = _const_value(src, f, right)
        if vals is not None and all(v > 0 and (v & (v - 1)) == 0 for v in vals):
            return   # powers of two: a shift
        if vals is not None or right.strip() in src.unrolled_vars(f, pos):
            wa = widths.of(left)
            d = dsp_per_mul(wa, 32, dsp_kind, 2 * max(wa, 32))
            _add(*add, "mul", f"{where}: {left.strip()} {op} {right.strip()}",
                 f"constant divisor {vals}: reciprocal multiply", "dsp", d)
            return
    w = max(widths.of(left), widths.of(right))
    _add(*add, "div", f"{where}: {left.strip()} {op} {right.strip()}",
         f"{w}-bit divider", "lut", divider_luts(w, True), divider_luts(w, False))


def bound_variables(body, op, impl):
    """Variables whose `op` a `#pragma HLS BIND_OP variable=v op=<op>
    impl=<impl>` binds (UG1399, pragma HLS bind_op): op=mul impl=fabric a
    LUT multiplier, no DSP; op=add impl=dsp the slice's ALU, one slice per
    DSP_ALU_BITS of the sum, no LUTs."""
    return {p["variable"] for p in _pragmas(body, "BIND_OP")
            if p.get("op", "").lower() == op and p.get("impl", "").lower() == impl
            and "variable" in p}


def fabric_mul_luts(a, b):
    """LUTs of an a x b-bit multiplier in fabric: an array of a partial-product
    rows of b bits summed on carry chains takes about a*b/2 LUT6s (two partial
    product bits and their sum per LUT); we count a*b, the pessimistic reading
    (no vendor table for HLS's fabric multiplier is published)."""
    return a * b


def divider_luts(w, pipelined):
    """A W-bit divider: pipelined (II=1), W stages of a W+1-bit subtractor;
    outside a pipeline HLS uses an iterative one (its `_seq` divider core):
    one subtractor and the quotient and remainder shift registers' logic."""
    return w * (w + 1) if pipelined else 4 * w


def _add(items, shared, n, seq, kind, name, detail, resource, each, each_seq=None, products=0):
    """n dedicated units (pipelined) and a claim on the function's shared unit
    (sequential copies); `products`: int8 products per dedicated unit."""
    names = re.findall(r"[A-Za-z_]\w*", name.split(": ", 1)[-1])
    if n:
        it = Item(kind, name, n, f"{detail}, {each:g} {resource.upper()} each", products=n * products)
        setattr(it, resource, n * each)
        items.append(it)
    if seq:
        each = each if each_seq is None else each_seq
        cur = shared.get(kind)
        if cur is None or getattr(cur, resource) < seq * each:
            it = Item(kind, name + " (shared unit)", seq,
                      f"{detail}, {each:g} {resource.upper()}; one unit per function copy "
                      "serves its operators outside pipelined loops")
            setattr(it, resource, seq * each)
            it.names = names
            shared[kind] = it


def packed_muls(src, instances, dsp_int8):
    """One item per call site of PACKED_MUL (hls/mac2.h): per copy two int8
    products from one DSP (CTRAIN_DSP_INT8 2: WP486 packing on DSP48E2), or
    two DSPs (1: DSP48E1). Its body is not counted again (_operators)."""
    if PACKED_MUL not in src.functions:
        return []
    per = 1 if dsp_int8 == 2 else 2
    items = []
    for caller, callee, pos, args, _ in src.call_sites():
        if callee != PACKED_MUL:
            continue
        cf = src.functions[caller]
        p, s = instances.get(caller, (0, 0))
        n = src.unroll_factor(cf, pos) * (p + s)
        if not n:
            continue
        loops = [lp.label for lp in enclosing(cf.loops, pos) if lp.label]
        how = "packed: one DSP48E2 (WP486)" if per == 1 else "two plain products"
        name = f"{caller}:{loops[-1] if loops else '-'}: {PACKED_MUL}({', '.join(args[:3])})"
        items.append(Item("mul", name, n, f"8x8 bit x2, {how}, {per} DSP each", dsp=n * per,
                          products=2 * n))
        if per == 1:
            items.append(Item("add", name + ": p1 correction", n,
                              f"{PACKED_FIX_BITS}-bit adder in fabric, {PACKED_FIX_BITS} LUT each",
                              lut=n * adder_luts(PACKED_FIX_BITS)))
    return items


def pe_sites(items):
    """The int8 product items of the MAC array (MAC_FUNCTIONS)."""
    return [i for i in items if i.kind == "mul" and i.name.split(":")[0] in MAC_FUNCTIONS and i.products]


def pe_loop_products(src):
    """{PE loop label: int8 products per step it hands the MAC array}: each
    unrolled write of a non-zero value into the array passed as its b0 or b1
    input (a write of 0 feeds no product). Every operand counts, whether or
    not every step uses it (a pair's second tile or kept weight): the peak is
    what the multipliers could make."""
    out = {}
    for caller, callee, pos, args, _ in src.call_sites():
        f = src.functions[caller]
        loops = [lp.label for lp in enclosing(f.loops, pos) if lp.label in PE_LOOPS]
        if callee not in MAC_FUNCTIONS or not loops or PE_LOOPS[loops[-1]] != caller:
            continue
        n = out.get(loops[-1], 0)
        for arg in (args[1], args[2]):
            for m in re.finditer(r"\b" + re.escape(arg.strip()) + r"\s*\[[^\]]*\]\s*=(?!=)\s*([^;]+);", f.body):
                if re.fullmatch(r"(\(\s*\w+\s*\)\s*)?0", m.group(1).strip()):
                    continue
                n += src.unroll_factor(f, m.start())
        out[loops[-1]] = n
    return out


def pe_loop_own_products(items):
    """{PE loop label: int8 products per step of its own multipliers}: the
    products a PE loop makes without the MAC array (the position path's
    multiply-accumulates, CTRAIN_SPARSE_POS_MACC)."""
    return {label: sum(i.products for i in items
                       if i.kind == "mul" and i.name.startswith(f"{fn}:{label}:"))
            for label, fn in PE_LOOPS.items()}


def pe_products(src, items):
    """int8 products per cycle of the design's largest multiplier array: per
    PE loop what it feeds the MAC array (at most what the array's units
    make) plus its own multipliers' products; the larger loop's, as one
    instruction runs at a time (perfmodel.Board.peak_products is the same
    figure from the configuration, and a test holds them equal)."""
    feed, own = pe_loop_products(src), pe_loop_own_products(items)
    units = sum(i.products for i in pe_sites(items))
    return max((min(feed.get(label, 0), units) + own[label] for label in PE_LOOPS), default=0)


def shared_selects(src):
    """Items for the input selects of the instances ALLOCATION shares
    (Sources.shared_instances): an instance serving k call sites takes a k:1
    select on every bit of its datapath inputs, ceil((k - 1) / 3) LUT6 per
    bit (a LUT6 is a 4:1 mux; two 2:1 bits sharing a LUT6_2, or the select
    merging into the callers' own operand selects, are not assumed: the
    pessimistic reading). Datapath inputs: const array parameters it
    partitions completely (wires), and parameters passed by value where its
    calls sit in pipelined loops (a new operand every cycle). A sequential
    call's scalar arguments are latched into the callee's argument registers
    once per call: FSM control, which the estimate leaves to the margin as it
    does every FSM's registers and muxes; an array left in memory is a RAM
    port (its address select not counted), a const struct reference a set of
    registers the callers fill (not counted)."""
    items = []
    for (scope, name), (inst, sites) in sorted(src.shared_instances().items()):
        f = src.functions[name]
        k = math.ceil(sites / inst)
        head = f.signature[f.signature.index("(") + 1:f.signature.rindex(")")]
        complete = {p.get("variable") for p in _pragmas(f.body, "ARRAY_PARTITION")
                    if p.get("type", "complete") == "complete" and p.get("dim", "1") in ("0", "1")}
        piped = any(src.in_pipeline(src.functions[c], pos) for c, callee, pos, _, _ in src.call_sites()
                    if callee == name)
        bits = 0
        for a in split_args(head):
            pm = re.match(r"\s*(const\s+)?(.*?)([&*]?)\s*([A-Za-z_]\w*)\s*((?:\[[^\]]*\])*)\s*$", a)
            if not pm or pm.group(3):
                continue   # a reference or a pointer: written or a struct (see above)
            dims = [src.macros.eval(d) for d in re.findall(r"\[([^\]]+)\]", pm.group(5))]
            width = src.types.width(pm.group(2).strip())
            if width is None or None in dims:
                continue
            if dims and (not pm.group(1) or pm.group(4) not in complete or len(dims) > 1):
                continue   # an output, or an array in memory
            if not dims and not piped:
                continue   # latched once per sequential call
            bits += width * math.prod(dims)
        lut = inst * bits * math.ceil((k - 1) / 3)
        if lut:
            items.append(Item("mux", f"{scope}: {name} inputs (one instance per {k} calls, ALLOCATION)",
                              inst, f"{k}:1 x {bits} bit, {lut // inst} LUT each", lut=lut))
    return items


def multiplexers(src, arrs, instances):
    """Accesses of partitioned arrays at a variable bank index, followed
    through call arguments: reads of complete partitions; reads, and the
    writes of unrolled copies, of cyclic and block ones not provably aligned
    (_aligned)."""
    items = []
    for fn, arrmap in _bound_arrays(src, arrs, instances).items():
        f = src.functions[fn]
        copies = instances.get(fn, 0)
        if copies == 0:
            continue
        for local, a in arrmap.items():
            for m in re.finditer(r"\b" + re.escape(local) + r"((?:\s*\[[^\[\]]*(?:\[[^\]]*\][^\[\]]*)*\])+)",
                                 f.body):
                it = _mux_item(src, f, local, a, m, copies)
                if it is not None:
                    items.append(it)
    return items


def _bound_arrays(src, arrs, instances=None):
    """{function: {local name: Array}} of the banked arrays each function
    sees: its own, and those its callers pass to array parameters
    (followed four call levels deep), from the callers the build
    instantiates (`instances`; all without it)."""
    by_func = {}
    for a in arrs:
        if isinstance(a, Array) and ((a.partitioned or a.cyclic) and a.banks > 1 or a.reshaped):
            by_func.setdefault(a.function, {})[a.name] = a
    # parameter bindings: callee param name -> array, from call sites (one level at a time)
    bound = {fn: dict(v) for fn, v in by_func.items()}
    sites = src.call_sites()
    for _ in range(4):
        for caller, callee, _, args, _ in sites:
            if instances is not None and not instances.get(caller, 0):
                continue
            known = bound.get(caller, {})
            params = src.functions[callee].params
            for i, a in enumerate(args):
                sub = re.fullmatch(r"(\w+)\s*((?:\[[^\[\]]*\])*)", a.strip())
                if sub is None or sub.group(1) not in known:
                    continue
                if i < len(params) and (params[i][2] or _array_typedef(src, params[i][0])):
                    k = len(re.findall(r"\[", sub.group(2)))
                    bound.setdefault(callee, {})[params[i][1]] = _subarray(known[sub.group(1)], k)
    return bound


def _subarray(a, k):
    """Array `a` as a callee sees `a[i]...[j]` (k leading subscripts, e.g.
    one ping-pong copy `win[h]`): its banks along the remaining dims; the
    select of the leading ones is the caller's access (counted there)."""
    if k == 0:
        return a

    def shift(ds):
        return {d - k for d in ds if d > k}
    return replace(a, dims=a.dims[k:], partitioned=shift(a.partitioned), reshaped=shift(a.reshaped),
                   cyclic={d - k: v for d, v in a.cyclic.items() if d > k})


def _mux_item(src, f, local, a, m, copies):
    """The multiplexer Item of access `m` to array `a` (as `local` in f), or
    None where every copy reads or writes one fixed bank."""
    tail = f.body[m.end():m.end() + 3].lstrip()
    write = tail.startswith("=") and not tail.startswith("==")
    unroll = src.unroll_factor(f, m.start())
    idx = re.findall(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]", m.group(1))
    if write and unroll > 1 and _disjoint_copies(src, f, m.start(), a, idx):
        return None
    n_sel = _bank_choices(src, f, m.start(), a, idx, write, unroll)
    if n_sel <= 1:
        return None
    n = unroll * copies
    elem = a.width // a.lanes   # one element's lanes are selected (a word's: each copy its own)
    lut = elem * math.ceil((n_sel - 1) / 3)
    return Item("mux", f"{f.name}: {local}{m.group(1)}{' (write)' if write else ''} "
                f"({a.function}:{a.name})", n, f"{n_sel}:1 x {elem} bit, {lut} LUT each", lut=n * lut)


def _bank_choices(src, f, pos, a, idx, write, unroll):
    """How many banks of `a` one access with index expressions `idx` may
    select at run time: the product over its dimensions indexed by values
    that vary per copy (complete and block partitions on reads; cyclic
    ones, on writes of unrolled copies too, unless _aligned)."""
    n_sel = 1
    for d, e in enumerate(idx, start=1):
        per_copy = _is_const(src, f, pos, e) or \
            all(src.macros.eval(i) is not None or i in src.unrolled_vars(f, pos)
                for i in re.findall(r"[A-Za-z_]\w*", e))
        if d in a.reshaped and not write and not per_copy:
            n_sel *= a.dims[d - 1]
        elif d in a.partitioned and not per_copy and (not write or unroll > 1):
            # a read selects among the banks; the writes of unrolled copies
            # each bank among the copies: where the index keeps its residue
            # modulo F per copy (F a power of two dividing the banks), only
            # the banks of that residue
            n_sel *= _complete_choices(src, f, pos, e, a.dims[d - 1])
        elif d in a.cyclic and not per_copy and (not write or unroll > 1):
            kind, fac = a.cyclic[d]
            if not (kind == "cyclic" and _aligned(src, f, pos, e, fac)):
                n_sel *= fac   # a write of unrolled copies: each bank picks its copy's data
    return n_sel


def _disjoint_copies(src, f, pos, a, idx):
    """Whether the unrolled copies of a write never meet in one bank: a
    partitioned dimension indexed by an unrolled loop's index alone keeps
    each copy of that loop in banks of its own, and the other index
    expressions vary with no other unrolled loop (each bank then has one
    writer: its data needs no select)."""
    unrolled = src.unrolled_vars(f, pos)
    sep = {e.strip() for d, e in enumerate(idx, start=1)
           if (d in a.partitioned or d in a.cyclic) and e.strip() in unrolled}
    if not sep:
        return False
    rest = set()
    for e in idx:
        if e.strip() not in sep:
            rest |= set(re.findall(r"[A-Za-z_]\w*", e))
    return src.unroll_factor(f, pos, names=rest - sep) <= 1


def _complete_choices(src, f, pos, e, n):
    """Banks of a complete partition of n that index `e` may select per
    copy: n // F for the largest power of two F dividing n that `e` is
    aligned to (_aligned: its residue modulo F fixed per copy, e.g. `g * W +
    r` with r an unrolled index), else n."""
    F = n & -n
    while F > 1:
        if _aligned(src, f, pos, e, F):
            return n // F
        F //= 2
    return n


def _array_typedef(src, ptype):
    """Whether a parameter's declared type is an array typedef (pe_tapacc_t):
    an array passed by reference like `T x[N]`."""
    return re.sub(r"\bconst\b", "", ptype).strip() in src.types.array_typedefs


def _aligned(src, f, pos, expr, factor):
    """Whether index `expr` of a cyclic partition by `factor` names the same
    bank in every iteration (per unrolled copy): a sum of constants, unrolled
    loop indices, products with a multiple of the factor, `x << K` and `x &
    M` with the factor dividing 2^K or M, one-line inline functions returning
    such a value, and variables that only ever hold such multiples (set to 0
    or to a multiple, stepped by a multiple; locals assigned once are read
    through). Anything else is not (HLS then selects the bank at run time).
    Memoized per function, unrolled context, expression and factor (the port
    budget asks often)."""
    memo = src.__dict__.setdefault("_aligned", {})
    key = (f.name, frozenset(src.unrolled_vars(f, pos)), expr.strip(), factor)
    if key not in memo:
        memo[key] = _Alignment(src, f, pos, factor).term_ok(expr, 0)
    return memo[key]


class _Alignment:
    """The proof of _aligned for one access: what it knows of f's variables
    (the unrolled loop indices at `pos`, the variables being followed)."""

    def __init__(self, src, f, pos, factor):
        self.src, self.f, self.factor = src, f, factor
        self.unrolled = src.unrolled_vars(f, pos)
        self.visiting = set()

    def multiple(self, e):
        """Whether every value expression `e` takes is a multiple of the factor."""
        return all(v is not None and v % self.factor == 0 for v in self.src.eval_in(self.f, e))

    def local_value(self, name):
        """The one expression a local assigned once holds, else None."""
        memo = self.src.__dict__.setdefault("_local_value", {})
        key = (self.f.name, name)
        if key not in memo:
            defs = [_rhs(d) for d in re.findall(rf"\b{name}\s*=(?!=)\s*([^;]+);", self.f.body)]
            memo[key] = defs[0] if len(defs) == 1 and not re.search(
                rf"\b{name}\s*(\+\+|--|[-+*/]=)|(\+\+|--){name}\b", self.f.body) else None
        return memo[key]

    def aligned_var(self, name):
        """Whether variable `name` only ever holds 0 or aligned values, stepped
        by multiples (False where it is defined through itself)."""
        if name in self.visiting:
            return False   # defined through itself (x = x + 1): not provable here
        self.visiting.add(name)
        if re.search(rf"(\+\+|--)\s*{name}\b|\b{name}\s*(\+\+|--|-=|\*=|/=)", self.f.body):
            return False
        sets = [_rhs(s) for s in re.findall(rf"\b{name}\s*=(?!=)\s*([^;]+)", self.f.body)]
        steps = [_rhs(s) for s in re.findall(rf"\b{name}\s*\+=\s*([^;]+)", self.f.body)]
        return bool(sets or steps) and all(s.strip() == "0" or self.term_ok(s, 0, False) for s in sets) and \
            all(self.multiple(s) for s in steps)

    def term_ok(self, term, depth, lane_ok=True):
        """Whether `term` is aligned (`lane_ok`: an unrolled index or constant may be added)."""
        s = LEAD_CAST.sub("", term.strip())   # a cast
        while s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
            s = s[1:-1].strip()
        if self.src.macros.eval(s) is not None:
            return lane_ok or self.multiple(s)
        if s in self.unrolled:
            return lane_ok
        parts = _split_top(s, "+")
        if len(parts) > 1:
            return all(self.term_ok(p, depth, lane_ok) for p in parts)
        scaled = self.scaled(s, depth)
        if scaled is not None:
            return scaled
        if re.fullmatch(r"[A-Za-z_]\w*", s) and depth < 4:
            v = self.local_value(s)
            if v is not None and s not in self.f.template:
                return self.term_ok(v, depth + 1, lane_ok)
            return self.aligned_var(s)
        return False

    def scaled(self, s, depth):
        """Whether `s`, a product, a masked value, a left shift or a call,
        is aligned (None: none of those)."""
        prod = _split_top(s, "*")
        if len(prod) > 1:
            return any(self.multiple(p) for p in prod)
        mask = _split_bitand(s)
        if len(mask) > 1:
            # x & ~(F - 1): the low bits cleared
            return any(self.multiple(p) for p in mask)
        shl = re.fullmatch(r"(.+?)<<([^<>]+)", s)
        if shl and _balanced(shl.group(1)) and _balanced(shl.group(2)):
            # x << K: a multiple of 2^K
            ks = self.src.eval_in(self.f, shl.group(2))
            return all(k is not None and (1 << k) % self.factor == 0 for k in ks)
        call = re.fullmatch(r"([A-Za-z_]\w*)\s*\((.*)\)", s)
        if call and depth < 4 and _balanced(call.group(2)):
            return self.returned(call.group(1), split_args(call.group(2)), depth)
        return None

    def returned(self, name, args, depth):
        """Whether a call of inline function `name` (one `return e;` after
        its pragmas) is aligned: e with the arguments in place."""
        g = self.src.functions.get(name)
        body = re.sub(r"#pragma[^\n]*", "", g.body).strip() if g is not None else ""
        ret = re.fullmatch(r"return\s+([^;]+);", body)
        if ret is None or len(args) != len(g.params) or g.template:
            return False
        e = substitute(ret.group(1), {pname: f"({a.strip()})" for (_, pname, _), a in zip(g.params, args)})
        return self.term_ok(e, depth + 1, False)


def _rhs(s):
    """An assigned expression up to the first top-level comma or unbalanced
    closing parenthesis (a for-loop step ends at the loop header's `)`)."""
    depth = 0
    for i, ch in enumerate(s):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                return s[:i].strip()
        elif ch == "," and depth == 0:
            return s[:i].strip()
    return s.strip()


def _balanced(s):
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _split_top(s, op):
    """s split at top-level `op` (outside parentheses and brackets)."""
    out, depth, cur = [], 0, ""
    for ch in s:
        depth += ch in "([" 
        depth -= ch in ")]"
        if ch == op and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p for p in out if p.strip()] if len(out) > 1 else [s]


def _split_bitand(s):
    """s split at its top-level bitwise `&` (not `&&`)."""
    out, depth, last = [], 0, 0
    for i, ch in enumerate(s):
        depth += ch in "(["
        depth -= ch in ")]"
        if ch == "&" and depth == 0 and s[i - 1:i] != "&" and s[i + 1:i + 2] != "&":
            out.append(s[last:i])
            last = i + 1
    return out + [s[last:]] if out else [s]


# ----------------------------------------------------------------- fabric arithmetic

#: Binary + and - (and += -=) on values, and shifts: what `fabric_arith` counts.
_ARITH = re.compile(r"(?<![+\-<>=!&|*/%^])(\+=|-=|<<=|>>=|<<|>>|\+(?![+=])|-(?![-=>]))")
#: `x * ((T)1 << s)`: a product by a run-time power of two, a shift
#: (_operators leaves it to fabric_arith).
_SHIFT_MUL = re.compile(r"\*\s*\(\s*\(\s*[\w:<>]+\s*\)\s*1\s*<<\s*([^;]+?)\)\s*[;,)]")
#: The stage loop of a barrel shifter written as conditional copies:
#: `for (int s = 0; (1 << s) < N; s++)`.
_STAGES = re.compile(r"for\s*\(\s*int\s+(\w+)\s*=\s*0\s*;\s*\(\s*1\s*<<\s*\1\s*\)\s*<\s*([^;]+);")
#: `x++`, `x[i]--`, `++x`: a counter stepped by one.
_INCR = re.compile(r"([A-Za-z_][\w.]*(?:\s*\[[^\]]*\])*)\s*(\+\+|--)|(\+\+|--)\s*([A-Za-z_][\w.]*(?:\s*\[[^\]]*\])*)")
#: A comparison written with a space on each side (the sources' style; a
#: template's `<` and `>` and `->` have none): `a < b`, `x >= lim`, `e != 0`.
_CMP = re.compile(r"(?<=\s)(<=|>=|==|!=|<|>)(?=\s)")
#: Words before a `-` or `+` that make it unary.
_NOT_OPERANDS = {"return", "case", "else", "const"}


#: What precedes a unary minus: an opening bracket, an operator, `?`, `:`,
#: `,`, `=` or `return` (after an operand or `)` it is a subtraction).
_UNARY_BEFORE = re.compile(r"(?:^|[(\[=,?:!&|<>+*/%^~]|\breturn)\s*$")


#: A cast `(T)`, `(const T)`, `(ap_int<9>)`: a type name in parentheses (not
#: a parenthesized expression such as `(Q8_MAX >> k)`).
_CAST = re.compile(r"\(\s*(?:const\s+)?([A-Za-z_][\w:]*)(?:\s*<[^;()<>]*>)?\s*\)")
#: `if (a > b) b = a;`, `if (a < b) b = a;`: a running maximum or minimum.
_KEEP = re.compile(r"if\s*\(\s*([\w.]+(?:\[[^\]]*\])*)\s*[<>]=?\s*([\w.]+(?:\[[^\]]*\])*)\s*\)\s*"
                   r"\2\s*=\s*\1\s*;")
#: The widest select counted: a DDR beat (the AGUs' `ddr_get(...) :
#: beat_zero()`, 128 bits on the UltraScale+ boards, 64 on the Pynq-Z2).
SELECT_BITS = 128
#: The `?` of a select `c ? a : b`.
_SELECT = re.compile(r"\?")


def _on_directive(body, pos):
    """Whether pos is on a preprocessor line (`#pragma HLS LOOP_TRIPCOUNT max=A+B`)."""
    return body[body.rfind("\n", 0, pos) + 1:pos].lstrip().startswith("#")


def _select_at(body, pos):
    """The select whose `?` is at pos: (its condition's text, the position
    just before the condition (an opening parenthesis, an `=`), its leaves'
    texts, the `?` positions of the selects in its arms, the position just
    after its last leaf), arms that are selects themselves (parenthesized
    or not) flattened into the leaves; None where pos starts no select a
    statement holds (a `?` in a string, an unbalanced text)."""
    i, depth = pos - 1, 0
    while i >= 0:
        c = body[i]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (c in ";{},?:" or (c == "=" and body[i - 1] not in "=!<>" and body[i + 1] != "=")):
            break
        i -= 1
    cond = body[i + 1:pos]
    if re.search(r"\breturn\s", cond):
        cond = cond[cond.index("return") + 6:]
    leaves, inner, end = _select_leaves(body, pos)
    return None if leaves is None else (cond.strip(), i, leaves, inner, end)


def _select_leaves(body, pos):
    """The leaves of the select at pos and the position after its false arm
    (see _select_at)."""
    arms, end = _select_arms(body, pos)
    if arms is None:
        return None, [], end
    leaves, inner = [], []
    for a, b in arms:
        a, b = _unparen(body, a, b)
        q = _top_level(body, a, b, "?")
        sub, deeper, _ = _select_leaves(body[:b], q) if q is not None else (None, [], b)
        if sub is None:
            leaves.append(body[a:b])
        else:
            leaves += sub
            inner += [q] + deeper
    return leaves, inner, end


def _select_arms(body, pos):
    """The spans of the two arms of the select at pos (None where it has no
    `:` of its own) and the position after the false arm: the bracket depth
    and nested `?` counted, the false arm ending at `;`, `,` or a closing
    bracket."""
    arms, nested, start, end = [], 0, pos + 1, len(body)
    for i, c, depth in _scan(body, pos + 1):
        if depth < 0 or (depth == 0 and c in ";,"):
            end = i
            break
        if depth or c not in "?:" or body[i + 1] == ":" or body[i - 1] == ":":
            continue
        if c == "?" or nested:
            nested += 1 if c == "?" else -1
        elif not arms:
            arms.append((start, i))
            start = i + 1
    return (arms + [(start, end)], end) if len(arms) == 1 else (None, end)


def _unparen(body, a, b):
    """The span body[a:b] without its blanks and the parentheses around all of it."""
    while True:
        while a < b and body[a].isspace():
            a += 1
        while b > a and body[b - 1].isspace():
            b -= 1
        if b - a < 2 or body[a] != "(" or match_paren(body, a) != b - 1:
            return a, b
        a, b = a + 1, b - 1


def _is_bool(expr):
    """Whether an arm is a condition (a comparison, `&&`, `||`, `!x`): one bit."""
    e = expr.strip()
    for i, c, depth in _scan(e):
        if depth == 0 and (e.startswith(("&&", "||", "==", "!=", "<=", ">="), i) or
                           (c in "<>" and e[i - 1:i] == " " and e[i + 1:i + 2] == " ")):
            return True
    return e.startswith("!") and not e.startswith("!=")


def _top_level(body, a, b, ch):
    """The first `ch` in body[a:b] outside brackets, or None."""
    return next((i for i, c, depth in _scan(body, a, b) if c == ch and depth == 0), None)


def _scan(s, a=0, b=None):
    """(i, s[i], the bracket depth s[i] is at) for i in [a, b): an opening
    bracket at the depth outside it, a closing one at the depth it returns
    to (-1 where it closes a bracket opened before a)."""
    depth = 0
    for i in range(a, len(s) if b is None else b):
        c = s[i]
        depth -= c in ")]}"
        yield i, c, depth
        depth += c in "([{"


def select_luts(w, n=2):
    """A W-bit n:1 select (a chain of n - 1 `?:`): ceil((n - 1) / 3) LUT6 per
    bit (a LUT6 is a 4:1 mux), the rule the bank multiplexers and shared
    instances' selects count by; two bits of a 2:1 select sharing a LUT6_2
    is not assumed (the pessimistic reading)."""
    return w * -(-(n - 1) // 3)


def adder_luts(w):
    """A W-bit adder or subtractor: one LUT6 per bit on the carry chain (UG574, CARRY8)."""
    return w


def _against(op, left, right, lc, rc):
    """A comparison's constant side ("0" for zero, None when both sides are
    variables) and its operator with the variable on the left (0 < x is
    x > 0)."""
    if not (lc or rc):
        return None, op
    k = (left if lc else right).strip()
    against = "0" if re.fullmatch(r"(\(\s*[\w:<> ]+\s*\)\s*)?0[uUlL]*", k) else k
    return against, ({"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op) if lc else op)


def comparator_luts(w, op, against=None):
    """A W-bit comparison (module docstring, "Fabric arithmetic"): of two
    variables a carry chain with a LUT6 per two bit pairs, ceil(W / 2) (an
    equality the same, the pessimistic reading of an XOR per three pairs
    and a reduction); against a constant three bits per LUT6, ceil(W / 3);
    against 0 the sign bit (`< 0`, `>= 0`: wiring) or an OR of the bits,
    six per LUT6, ceil(W / 6)."""
    if against == "0":
        return 0 if op in ("<", ">=") else -(-w // 6)
    return -(-w // (3 if against is not None else 2))


def shifter_luts(w, step=1, out=None):
    """A W-bit shift by a run-time amount in steps of `step` bits (`8 * s`:
    bytes): log2(W / step) stages of 2:1 selects, two stages per LUT6 (a 4:1
    mux per bit per LUT6). Where only `out` bits of the result are used (a
    cast or a narrower target), synthesis trims the rest: the stages, the
    largest amounts first, keep `out` bits plus what the later stages can
    still shift in (a funnel of two 128-bit beats to one: 184 + 136 + 128
    bits, not 3 x 256)."""
    positions = max(1, w // step)
    bits = max(1, (positions - 1).bit_length())
    out = w if out is None else min(out, w)
    luts = 0
    for j in range((bits + 1) // 2):
        rest = max(0, bits - 2 * (j + 1))
        luts += min(w, out + ((1 << rest) - 1) * step)
    return luts


def _scopes(body):
    """Per position of a function body: the [] depth (an index, an address:
    counted at its bits) and whether it is inside a for/while header (loop
    control, not counted)."""
    depth, sub, head = 0, [0] * len(body), [False] * len(body)
    for i, ch in enumerate(body):
        if ch == "[":
            depth += 1
        sub[i] = depth
        if ch == "]":
            depth -= 1
    for m in re.finditer(r"\b(?:for|while)\s*\(", body):
        for j in range(m.end() - 1, match_paren(body, m.end() - 1) + 1):
            head[j] = True
    return sub, head


def _shifted_bits(widths, operand):
    """Bits of a shifted operand: a variable's declared width, however wide
    (the AGUs' two-beat funnels are 256 bits), else the operand's."""
    name = LEAD_CAST.sub("", operand.strip())
    if re.fullmatch(r"[A-Za-z_]\w*", name):
        return widths.of_name(name)
    if re.fullmatch(r"\(?\s*-?\s*(?:0x[0-9a-fA-F]+|\d+)[uUlL]*\s*\)?", name):
        return widths.cast(operand) or 32   # a literal: its cast's width (`(wide_t)1 << s`: 64 bits)
    return min(widths.of(operand), 64)


def _shift_step(src, amount):
    """The granularity of a shift amount `K * x` (K a power-of-two constant:
    `8 * s` shifts whole bytes), else 1."""
    a = amount.strip()
    while a.startswith("(") and a.endswith(")") and _balanced(a[1:-1]):
        a = a[1:-1].strip()
    m = re.match(r"(\w+)\s*\*(?!\*)", a)
    k = src.macros.eval(m.group(1)) if m and len(_split_top(a, "*")) == 2 else None
    return k if k and k > 0 and k & (k - 1) == 0 else 1


def _paren_left(text):
    """The parenthesised operand that ends `text` (any nesting), else ""."""
    t = text.rstrip()
    if not t.endswith(")"):
        return ""
    depth = 0
    for i in range(len(t) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(t[i], 0)
        if depth == 0:
            return t[i:]
    return ""


def _assignment(body, pos):
    """The match of the statement holding pos up to pos when it assigns
    (`T x = ...`, `x[i] = ...`; pragmas between skipped): group 1 the
    declared type (None for a plain assignment), group 2 the target."""
    start = max(body.rfind(";", 0, pos), body.rfind("{", 0, pos), body.rfind("}", 0, pos)) + 1
    text = re.sub(r"^[ \t]*#[^\n]*$", "", body[start:pos], flags=re.M)
    return re.match(r"\s*(?:const\s+)?(?:([\w:]+(?:\s*<[^;>()]*>)?)\s+)?([A-Za-z_][\w.]*)"
                    r"(?:\s*\[[^\]]*\])*\s*=(?!=)", text)


class _ArithWalk:
    """fabric_arith's walk: each non-inline function copy with the inline
    functions it calls, their parameters' constness and copy factors carried
    in from each call site."""

    def __init__(self, src):
        self.src = src
        self.sites = {}
        for s in src.call_sites():
            self.sites.setdefault(s[0], []).append(s)
        self.scopes = {}
        self.found = {}   # (root, function, op, left, right) -> [copies, each, detail, resource]

    def const(self, f, pos, expr, consts, depth=0):
        """Whether every identifier of `expr` is a constant in each copy: a
        macro, a template parameter, an unrolled loop's index, a type, a
        parameter the call site passes a constant, or a `const` local whose
        only initializer is one (`const int j = jj;`)."""
        unrolled = self.src.unrolled_vars(f, pos)
        expr = re.sub(r"\b(?:0x[0-9a-fA-F]+|\d+)[uUlL]*\b", " ", expr)   # literals (1u, 0xFF)
        for i in _IDENT_RE.findall(_CAST.sub(lambda c: " " if self.src.types.known(c.group(1)) else c.group(0),
                                             expr)):
            if self.src.macros.eval(i) is not None or i in f.template or i in unrolled or i in consts \
                    or self.src.types.known(i) or i in ("sizeof", "true", "false"):
                continue
            if depth < 3 and self.const_local(f, pos, i, consts, depth):
                continue
            return False
        return True

    def const_local(self, f, pos, name, consts, depth):
        """Whether `name` is a `const` local declared once in f, before pos,
        with an initializer constant in each copy."""
        decls = re.findall(rf"\bconst\s+[\w:]+(?:\s*<[^;>()]*>)?\s+{name}\s*=\s*([^;]+);", f.body[:pos])
        return len(decls) == 1 and len(re.findall(rf"\b[\w:>]+\s+{name}\s*[=;\[]", f.body)) == 1 and \
            self.const(f, pos, decls[0], consts, depth + 1)

    def factor(self, f, names, pfac):
        """The copies the call chain makes of an expression over `names`: the
        largest factor of the parameters it depends on."""
        deps = self.src.depends(f, names)
        return max([pfac[p] for p in deps if p in pfac], default=1)

    def walk(self, root, f, base, pfac, consts, piped, stack, tmpl=None):
        """Count f's operators (a copy of it under root, `base` copies of
        root, `pfac` its parameters' copy factors, `consts` its constant
        parameters, `piped`: called in a pipelined loop, `tmpl` its template
        arguments where its widths depend on them: instance_of), then its
        inline callees'."""
        if f.name not in self.scopes:
            self.scopes[f.name] = _scopes(f.body)
        tmpl = tmpl or {}
        label = f"{f.name}<{', '.join(str(v) for v in tmpl.values())}>" if tmpl else f.name
        at = SimpleNamespace(root=root, f=f, base=base, pfac=pfac, consts=consts, piped=piped,
                             widths=_Widths(self.src, f, tmpl), label=label)
        seen, inner = set(), set()
        for m in self.matches(at, _ARITH):
            self.arith(at, m.group(1), m.start(), seen)
        for m in self.matches(at, _SHIFT_MUL):
            self.shift_mul(at, m)
        for m in self.matches(at, _INCR):
            self.incr(at, m, seen)
        for m in self.matches(at, _STAGES):
            self.rotator(at, m)
        for m in self.matches(at, _CMP):
            self.compare(at, m.group(1), m.start(), seen)
        for m in self.matches(at, _SELECT):
            if m.start() not in inner:
                self.select(at, m.start(), seen, inner)
        for m in self.matches(at, _KEEP):
            self.keep(at, m, seen)
        for _, callee, pos, args, targs in self.sites.get(f.name, []):
            g = self.src.functions[callee]
            if g.inline and callee not in stack and callee != PACKED_MUL:
                gc, gf = self.bind(at, g, pos, args)
                self.walk(root, g, base, gf, gc, piped or self.src.in_pipeline(f, pos), stack + (callee,),
                          self.instance_of(at, g, targs))

    def matches(self, at, pattern):
        """The matches of pattern in at.f's body that are datapath (counted)."""
        return (m for m in pattern.finditer(at.f.body) if self.counted(at, m.start()))

    def counted(self, at, pos):
        """Whether an operator at pos is datapath of a pipelined loop (not a
        loop header, not a preprocessor line). An index's arithmetic counts
        too (an address is computed like any value), at the address's bits:
        address_bits."""
        _, head = self.scopes[at.f.name]
        return not (head[pos] or _on_directive(at.f.body, pos)) and \
            (at.piped or self.src.in_pipeline(at.f, pos))

    def address_bits(self, at, pos):
        """Bits of the subscript pos is in: log2 of the declared size of the
        dimension it indexes (a sum's low bits need only the operands' low
        bits, so an address adder is no wider than the address), None
        outside a subscript or where the size is not known (a pointer, DDR,
        an unsized parameter dimension)."""
        sub, _ = self.scopes[at.f.name]
        if not sub[pos]:
            return None
        body = at.f.body

        def opener(c):   # the '[' whose subscript holds c (its `]` included): _scopes' depth
            return next(i for i in range(c, -1, -1) if body[i] == "[" and sub[i] == sub[c])
        j, dim = opener(pos), 0
        while body[:j].rstrip().endswith("]"):   # earlier subscripts: `a[x][y + 1]` indexes dim 2
            j, dim = opener(len(body[:j].rstrip()) - 1), dim + 1
        m = re.search(r"([A-Za-z_]\w*)\s*$", body[:j])
        if not m:
            return None
        text = at.f.signature + "\n" + body
        decl = re.search(rf"\b[\w:>]+\s+[&*]?\s*{m.group(1)}\s*((?:\[[^\]]*\]\s*)+)[;,)=]", text)
        if decl:
            sizes = re.findall(r"\[([^\]]*)\]", decl.group(1))
        else:   # `pe_tapacc_t &acc`: an array typedef's dimensions
            typed = re.search(rf"\b(\w+)\s*[&*]?\s*{m.group(1)}\s*[;,)=]", text)
            if not typed or typed.group(1) not in self.src.types.array_typedefs:
                return None
            sizes = self.src.types.array_typedefs[typed.group(1)][1]
        if dim >= len(sizes) or not sizes[dim].strip():
            return None
        n = max([v for v in self.src.eval_in(at.f, sizes[dim]) if v] or [0])
        return max((n - 1).bit_length(), 1) if n else None

    def copies(self, at, pos, names):
        return at.base * self.factor(at.f, names, at.pfac) * self.src.unroll_factor(at.f, pos, names)

    def add(self, at, op, left, right, n, each, what, resource="lut"):
        k = (at.root, at.label, op, left.strip(), right.strip())
        self.found.setdefault(k, [0, each, what, resource])[0] += n

    def assigned(self, f, op, pos, left):
        """The variable a `+`/`-` at pos assigns its result to: `x += y`'s x,
        the target of `T x = a + b;` or `x[i] = a + b;` (_assignment), else
        None."""
        if op in ("+=", "-="):
            m = re.match(r"\s*([A-Za-z_]\w*)", left)
            return m.group(1) if m else None
        m = _assignment(f.body, pos)
        return m.group(2) if m else None

    def arith(self, at, op, pos, seen):
        """An adder, subtractor or run-time shift at pos, once per expression."""
        o = self.operation(at.f, op, pos, at.consts)
        if o is None:
            return
        left, right, lc, _ = o
        key = (op, re.sub(r"\s+", "", left), re.sub(r"\s+", "", right))
        if key in seen:
            return   # the same expression again in the copy: computed once
        seen.add(key)
        widths, resource = at.widths, "lut"
        if op.startswith(("<<", ">>")):
            w = _shifted_bits(widths, left)
            step = _shift_step(self.src, right)
            out = self.result_bits(at.f, pos, op, left, right, widths)
            kept = f", {out} bits used" if out and out < w else ""
            each, what = (w, f"{w}-bit decoder (a constant shifted)") if lc else \
                (shifter_luts(w, step, out),
                 f"{w}-bit shifter" + (f" by {step}-bit steps" if step > 1 else "") + kept)
        elif not left:   # a negation (operation)
            w = min(widths.of(right), 64)
            each, what = adder_luts(w), f"{w}-bit negation"
        else:
            address = self.address_bits(at, pos) if not op.endswith("=") else None
            if op in ("+=", "-="):
                w = min(widths.of(left), 64)   # the target's bits: the rest are dropped
            elif address:
                w = min(max(widths.of(left), widths.of(right)), 64, address)
            else:
                w = min(max(widths.of(left), widths.of(right)), 64, self.target_bits(at.f, pos, widths))
            each, what = adder_luts(w), f"{w}-bit adder" + (" (an address)" if address else "")
            if op == "+" and w <= DSP_ALU_BITS and self.macc(at.f, left, right):
                each, what = 0, f"{w}-bit adder in its product's DSP slice (multiply-add)"
            elif self.assigned(at.f, op, pos, left) in bound_variables(at.f.body, "add", "dsp"):
                each, resource = -(-w // DSP_ALU_BITS), "dsp"
                what = f"{w}-bit adder in a DSP slice's ALU (BIND_OP impl=dsp)"
        self.add(at, op, left, right, self.copies(at, pos, _IDENT_RE.findall(left + " " + right)),
                 each, what, resource)

    def compare(self, at, op, pos, seen):
        """A comparator at pos (comparator_luts), once per expression and copy;
        W the variable operands' wider declared width (C's promotion to int
        is not assumed: synthesis compares at the operands' bits)."""
        f, body = at.f, at.f.body
        start = body.rfind("\n", 0, pos) + 1
        left = _operand(body[start:pos], "left")
        right = _operand(body[pos + len(op):], "right")
        if not left or not right or left.strip() in _NOT_OPERANDS:
            return
        lc, rc = self.const(f, pos, left, at.consts), self.const(f, pos, right, at.consts)
        if lc and rc:
            return
        key = ("cmp", op, re.sub(r"\s+", "", left), re.sub(r"\s+", "", right))
        if key in seen:
            return
        seen.add(key)
        var = [e for e, c in ((left, lc), (right, rc)) if not c]
        w = min(max(at.widths.of(e) for e in var), 64)
        against, cop = _against(op, left, right, lc, rc)
        lanes = self.lane_count(at, pos, (left if lc else right)) if against not in (None, "0") else 0
        b = (lanes - 1).bit_length() if lanes > 1 else w
        if b < w:
            # a variable against each unrolled lane's index (a thermometer
            # code): per lane its b low bits against the constant, one LUT6
            # up to five of them (and whether any higher bit is set), else
            # their constant compare and one more; the higher bits' OR once,
            # shared by the lanes
            each = 1 if b <= 5 else comparator_luts(b, cop, against) + 1
            what = f"{w}-bit comparator against a lane's index: {b} low bits a lane"
            v = var[0].strip()
            if ("cmp-high", v) not in seen:
                seen.add(("cmp-high", v))
                self.add(at, "high bits", v, f"{b}", self.copies(at, pos, _IDENT_RE.findall(v)),
                         -(-(w - b) // 6), f"OR of {w - b} high bits, shared by the lanes' comparators")
        else:
            each = comparator_luts(w, cop, against)
            what = f"{w}-bit comparator" + (" against a constant" if against is not None else "")
        if each:
            self.add(at, op, left, right, self.copies(at, pos, _IDENT_RE.findall(left + " " + right)), each, what)

    def select(self, at, pos, seen, inner):
        """A datapath select `c ? a : b` at pos (select_luts), once per
        expression and copy; a chain of them (`c ? a : d ? b : e`, an arm a
        select) one n:1 select, its inner `?` put in `inner`. W the variable
        leaves' wider declared width, no more than the target's."""
        f, body = at.f, at.f.body
        sel = _select_at(body, pos)
        if sel is None:
            return
        cond, before, arms, nested, end = sel
        inner.update(nested)
        if len(arms) == 2 and self.const(f, pos, cond, at.consts):
            return   # chosen per copy (an unrolled lane's wiring, spp_rotate's wrap)
        var = [a for a in arms if not self.const(f, pos, a, at.consts)]
        key = ("sel", re.sub(r"\s+", "", cond), tuple(re.sub(r"\s+", "", a) for a in arms))
        if not var or key in seen:
            return
        seen.add(key)
        w = min(max(1 if _is_bool(a) else at.widths.of(a.lstrip("-~ "), cap=SELECT_BITS) for a in var),
                self.address_bits(at, pos) or self.select_bits(at, pos, before, end) or SELECT_BITS)
        if len(arms) == 2 and self.gates_adder(at, before, arms, end):
            each, what = 0, f"{w}-bit 2:1 select of 0, in its adder's LUTs"
        else:
            each, what = select_luts(w, len(arms)), f"{w}-bit {len(arms)}:1 select"
        self.add(at, "?:", cond, " : ".join(a.strip() for a in arms),
                 self.copies(at, pos, _IDENT_RE.findall(cond + " " + " ".join(arms))), each, what)

    def select_bits(self, at, pos, open_, end):
        """Bits of a select's result that are used: the type the whole
        select is cast to (`(q8_t)(x > M ? M : x)`), the function's return
        type for `return c ? a : b;`, else the declared target's
        (target_bits)."""
        f, body = at.f, at.f.body
        if 0 <= open_ < len(body) and body[open_] == "(" and end < len(body) and body[end] == ")":
            cast = re.search(r"\(\s*(?:const\s+)?([\w:<> ]+?)\s*\)\s*$", body[:open_]) or \
                re.search(r"\b((?:ap_u?int\s*<[^;()<>]*>)|[A-Za-z_]\w*_t)\s*$", body[:open_])
            if cast and at.widths.type_width(cast.group(1).strip()):
                return at.widths.type_width(cast.group(1).strip())
        if re.match(r"\s*return\s", body[open_ + 1:pos]):
            ret = re.match(r"\s*(?:(?:static|inline|const)\s+)*([\w:]+(?:\s*<[^;()]*>)?)\s+\w+\s*\(",
                           f.signature)
            return (at.widths.type_width(ret.group(1)) if ret else None) or SELECT_BITS
        return self.target(f, pos, at.widths)

    def keep(self, at, m, seen):
        """`if (a > b) b = a;` (a running maximum or minimum): where the
        unrolled copies chain it (b is the same for every copy: a lane's
        statistics into one record) each copy's update is a W-bit 2:1
        select, W b's width; a single update is b's register enable, no
        LUTs (its comparison is counted as any)."""
        a, b = m.group(1), m.group(2)
        n = self.copies(at, m.start(), _IDENT_RE.findall(a + " " + b))
        key = ("keep", re.sub(r"\s+", "", m.group(0)))
        if n < 2 * at.base or key in seen:
            return
        seen.add(key)
        w = min(at.widths.of(b), SELECT_BITS)
        self.add(at, "keep", b, a, n, select_luts(w),
                 f"{w}-bit 2:1 select, a running extreme's update chained over the copies")

    def gates_adder(self, at, open_, arms, end):
        """Whether a 2:1 select with a constant-0 arm is, whole and in
        parentheses, an operand of a `+` or `-` (`(init ? 0 : acc) + m`),
        or the right side of a `+=` or `-=`:
        the adder's carry-chain LUT takes the gate as a third input (a_i AND
        NOT c, then XOR b_i: one LUT6 per bit, as the adder alone), or the
        DSP slice's reset where the adder is a product's post-adder."""
        zero = [a for a in arms if re.fullmatch(r"\s*(?:\(\s*[\w:<> ]+\s*\)\s*)?(?:[\w:<>]+\s*\(\s*0[uUlL]*\s*\)|0[uUlL]*)\s*",
                                                   a)]
        if not zero:
            return False
        body = at.f.body
        if 0 < open_ and end < len(body) and body[open_] == "=" and body[open_ - 1] in "+-" \
                and body[end] == ";":
            return True   # `e += c ? x : 0;`
        if open_ < 0 or body[open_] != "(" or end >= len(body) or body[end] != ")":
            return False
        before, after = body[:open_].rstrip(), body[end + 1:].lstrip()
        return bool(re.match(r"[+-](?![+=-])", after)) or bool(re.search(r"(?<![+-])(?:[+-]|\+=|-=)$", before))

    def lane_count(self, at, pos, expr):
        """The copies of a constant expression over unrolled lanes: the trip
        count of an enclosing unrolled loop whose index it uses, or the copy
        factor of an inline function's parameter a call site passes such an
        index (0 when it uses none)."""
        ids = set(_IDENT_RE.findall(expr))
        n = 0
        for lp in enclosing(at.f.loops, pos):
            if lp.unrolled and lp.var in ids and lp.bound:
                n = max(n, self.src.trip(at.f, lp))
        for i in ids:
            if i in at.consts and at.pfac.get(i, 1) > 1:
                n = max(n, at.pfac[i])
        return n

    def macc(self, f, left, right):
        """Whether one operand of a `+` is a product `T m = a * b;` of f that a
        DSP slice makes (not BIND_OP fabric) and only this sum reads: the
        slice's post-adder then adds it (UG901's multiply-add and
        multiply-accumulate macros; the accumulator's reset is the slice's
        own, UG1399 "Accumulation"), no LUTs."""
        body = re.sub(r"^[ \t]*#[^\n]*$", "", f.body, flags=re.M)
        for name in (left.strip(), right.strip()):
            if not re.fullmatch(r"[A-Za-z_]\w*", name) or name in bound_variables(f.body, "mul", "fabric"):
                continue
            if re.search(rf"\b(?:const\s+)?[\w:<>]+\s+{name}\s*=[^=;][^;]*[^*/]\*(?![*=])[^;]*;", body) \
                    and len(re.findall(rf"\b{name}\b", body)) == 2:
                return True
        return False

    def incr(self, at, m, seen):
        """`x++`, `--x`: an incrementer at x's declared width (a carry chain, as
        an adder), once per variable and copy."""
        name = m.group(1) or m.group(4)
        op = m.group(2) or m.group(3)
        if self.const(at.f, m.start(), name, at.consts) or (op, name) in seen:
            return
        seen.add((op, name))
        w = min(at.widths.of(name), 64)
        n = self.copies(at, m.start(), _IDENT_RE.findall(name))
        fresh = self.counts_from_zero(at.f, m.start(), name)
        if fresh:
            w = min(w, fresh.bit_length())
        self.add(at, op, name, "", n, adder_luts(w),
                 f"{w}-bit incrementer" + (f" (counts at most {fresh} a cycle from 0)" if fresh else ""))

    def counts_from_zero(self, f, pos, name):
        """The unrolled copies around pos where `name` is a plain local that
        the pipelined loop's body (or the function's, an inline helper such
        as sp_tap_of) declares `= 0` and only unrolled copies step after
        (`uint32_t tap = 0; for (k ...) if (...) tap++;`): its values are at
        most that many, so synthesis keeps that many bits (range analysis);
        None otherwise."""
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            return None
        piped = [lp for lp in enclosing(f.loops, pos) if lp.pipelined]
        if not piped and not f.inline:
            return None
        start = piped[-1].start if piped else 0
        decl = re.search(rf"\b[A-Za-z_][\w:]*(?:<[^;>()]*>)?\s+{name}\s*=\s*0[uUlL]*\s*;", f.body[start:pos])
        if not decl or re.search(rf"\b{name}\s*(?:[-+*/|&^]?=(?!=)|<<=|>>=)", f.body[start + decl.end():pos]):
            return None
        after = [q for q in enclosing(f.loops, pos) if q.start > start + decl.start()]
        if any(not q.unrolled for q in after):
            return None   # a sequential loop steps it too
        inner = after
        n = 1
        for q in inner:
            n *= self.src.trip(f, q)
        return n if inner else None

    def rotator(self, at, m):
        """A barrel shifter written as log stages of conditional copies (`for
        (s = 0; (1 << s) < N; s++) if ((amt >> s) & 1) { ... x[p] = y[p]; }`,
        sconv.cpp spp_rotate): a 2:1 select per element bit a stage, two
        stages per LUT6, as shifter_luts."""
        f = at.f
        open_ = f.body.find("{", m.end())
        body = f.body[open_:match_brace(f.body, open_) + 1] if open_ >= 0 else ""
        cond = re.search(rf"if\s*\(\s*\(\s*(\w+)\s*>>\s*{m.group(1)}\s*\)\s*&\s*1\s*\)", body)
        copy = re.search(r"(\w+)\s*\[\s*(\w+)\s*\]\s*=\s*(\w+)\s*\[\s*\2\s*\]\s*;", body)
        inner = copy and re.search(rf"for\s*\(\s*int\s+{copy.group(2)}\s*=\s*0\s*;\s*{copy.group(2)}\s*<\s*([^;]+);", body)
        if not (cond and copy and inner) or self.const(f, m.start(), cond.group(1), at.consts):
            return
        n = max([v for v in self.src.eval_in(f, m.group(2)) if v] or [0])
        elems = max([v for v in self.src.eval_in(f, inner.group(1)) if v] or [0])
        if n < 2 or not elems:
            return
        stages = (n - 1).bit_length()
        bits = min(at.widths.of_name(copy.group(1)), 64)
        each = elems * bits * ((stages + 1) // 2)
        self.add(at, "rotate", copy.group(1), cond.group(1),
                 at.base * self.factor(f, [copy.group(1), cond.group(1)], at.pfac), each,
                 f"barrel rotator of {elems} x {bits} bit, {stages} stages of conditional copies")

    def shift_mul(self, at, m):
        """`x * ((T)1 << s)`: a shift of x by a run-time amount."""
        f, pos = at.f, m.start()
        left = _operand(f.body[f.body.rfind("\n", 0, pos) + 1:pos], "left")
        if not left or self.const(f, pos, left, at.consts) or self.const(f, pos, m.group(1), at.consts):
            return
        w = min(at.widths.of(left), 64)
        self.add(at, "* 2^", left, m.group(1), self.copies(at, pos, _IDENT_RE.findall(left + " " + m.group(1))),
                 shifter_luts(w), f"{w}-bit shifter (a product by a power of two)")

    def instance_of(self, at, g, targs):
        """{parameter: value} of a call's template arguments where g's types
        depend on its template parameters (`ap_int<B + 2>`: q_narrow<B>),
        each instantiation then counted at its own widths and named with its
        arguments (q_narrow<7>, q_narrow<31>); {} otherwise (or where an
        argument is no constant)."""
        sized = [p for p in g.template
                 if re.search(rf"\bap_u?int\s*<[^;<>]*\b{p}\b", g.signature + g.body)]
        if not sized or len(targs) != len(g.template):
            return {}
        vals = {}
        for p, a in zip(g.template, targs):
            vals[p] = self.src.macros.eval(substitute(a, at.widths.tmpl))   # the caller's own parameters
        return vals if None not in vals.values() else {}

    def bind(self, at, g, pos, args):
        """An inline callee's constant parameters and their copy factors at a call site."""
        gc, gf = set(), {}
        for i, (_, pname, _) in enumerate(g.params):
            if i < len(args):
                ids = _IDENT_RE.findall(args[i])
                if self.const(at.f, pos, args[i], at.consts):
                    gc.add(pname)
                gf[pname] = self.src.unroll_factor(at.f, pos, ids) * self.factor(at.f, ids, at.pfac)
        return gc, gf

    def result_bits(self, f, pos, op, left, right, widths):
        """Bits of a shift's result that are used: the type it is cast to as a
        whole (`beat_t(x >> s)`, `(T)(x >> s)`) or the declared target it is
        the whole right side of; else all of them (64 at most)."""
        body = f.body
        start = body.rfind("\n", 0, pos) + 1
        lstart = start + len(body[start:pos].rstrip()) - len(left.strip())
        rtext = body[pos + len(op):]
        rend = pos + len(op) + (len(rtext) - len(rtext.lstrip())) + len(right.strip())
        before, after = body[:lstart].rstrip(), body[rend:].lstrip()
        if before.endswith("(") and after.startswith(")") and \
                match_paren(body, len(before) - 1) == rend + (len(body[rend:]) - len(after)):
            head = before[:-1].rstrip()
            m = re.search(r"\(\s*(?:const\s+)?([\w:<> ]+?)\s*\)$", head) or \
                re.search(r"([A-Za-z_][\w:]*(?:\s*<[^;()<>]*>)?)$", head)
            return (widths.type_width(m.group(1).strip()) or None) if m else None
        if re.search(r"[^=!<>+\-*/%&|^]=$", before) and after.startswith(";"):
            return self.target(f, pos, widths)
        return None

    def target_bits(self, f, pos, widths):
        """Bits of the variable a statement `T x = ...` or `x[i] = ...` assigns
        the expression at pos to (the adder needs no more: the low bits of
        a sum depend on the operands' low bits only), else 64."""
        return self.target(f, pos, widths) or 64

    def target(self, f, pos, widths):
        """target_bits' declared target, None where the statement has none."""
        m = _assignment(f.body, pos)
        if not m:
            return None
        if m.group(1) and widths.type_width(m.group(1)):
            return widths.type_width(m.group(1))
        return widths.of_name(m.group(2)) if not m.group(1) else None

    def operation(self, f, op, pos, consts):
        """(left, right, left constant, right constant), or None where there is
        nothing to count: a unary sign, a preprocessor line, constants on both
        sides, a shift by a constant (wiring), or an unrolled lane added to an
        aligned base (an OR: `k + j`, k a multiple of the lanes)."""
        body = f.body
        start = body.rfind("\n", 0, pos) + 1
        if _on_directive(body, pos):
            return None
        before = body[start:pos]
        if op.endswith("=") and op not in ("<<", ">>"):
            lm = re.search(r"([\w.]+(?:\s*\[[^\]]*\])*)\s*$", before)
            left = lm.group(1) if lm else ""
        else:
            left = _operand(before, "left") or _paren_left(before)
        right = _operand(body[pos + len(op):], "right")
        neg = self.negation(f, op, pos, before, left, right, consts)
        if neg is not False:
            return neg
        if not left or not right or left.strip() in _NOT_OPERANDS:
            return None
        lc, rc = self.const(f, pos, left, consts), self.const(f, pos, right, consts)
        if (lc and rc) or (op.startswith(("<<", ">>")) and rc):
            return None
        if op == "+":
            for lane, other in ((right, left), (left, right)):
                lp = self.lane_loop(f, pos, lane.strip())
                if lp and self.aligned_to(f, pos, other.strip(), lp):
                    return None
        return left, right, lc, rc

    def negation(self, f, op, pos, before, left, right, consts):
        """A unary minus at pos (`x < 0 ? -x : x`, q_abs; a subtractor from 0
        at x's width): ("", x, True, True), None on a constant (`-Q8_MAX`:
        nothing), False where op is no unary minus."""
        if left or op != "-" or not right or not _UNARY_BEFORE.search(before):
            return False
        return None if self.const(f, pos, right, consts) else ("", right, True, True)

    def lane_loop(self, f, pos, name):
        """The unrolled loop whose index `name` is, where its trip count is a
        power of two in every instantiation (its values then fit under a base
        aligned to it)."""
        for lp in enclosing(f.loops, pos):
            if lp.unrolled and lp.var == name and lp.bound:
                vals = [v for v in self.src.eval_in(f, lp.bound) if v]
                if vals and len(vals) == len(self.src.eval_in(f, lp.bound)) and \
                        all(v & (v - 1) == 0 for v in vals):
                    return lp
        return None

    def aligned_to(self, f, pos, base, lp):
        """Whether `base` holds only multiples of lp's trip count: a variable
        set to 0 and stepped by the loop's bound itself (`k += AGU_LANES(SIZE)`
        beside `j < AGU_LANES(SIZE)`, in every instantiation), or aligned to
        its largest value by _aligned's rules."""
        bound = re.sub(r"\s+", "", lp.bound)
        if re.fullmatch(r"[A-Za-z_]\w*", base):
            sets = re.findall(rf"\b{base}\s*=(?!=)\s*([^;]+);", f.body)
            steps = re.findall(rf"\b{base}\s*\+=\s*([^;]+);", f.body)
            if steps and all(re.sub(r"\s+", "", x) == "0" for x in sets) and \
                    all(re.sub(r"\s+", "", x) == bound for x in steps) and \
                    not re.search(rf"(\+\+|--)\s*{base}\b|\b{base}\s*(\+\+|--|-=|\*=|/=)", f.body):
                return True
        vals = [v for v in self.src.eval_in(f, lp.bound) if v]
        return _Alignment(self.src, f, pos, max(vals)).term_ok(base, 0, False)


_IDENT_RE = re.compile(r"[A-Za-z_]\w*")
#: Bits of a DSP slice's post-adder (DSP48E1 and DSP48E2: 48).
DSP_ALU_BITS = 48


def fabric_arith(src, instances):
    """Items (kind "add", LUTs) for the adders, subtractors and shifters of the
    pipelined datapaths (module docstring, "Fabric arithmetic"): every value
    `+`, `-`, `+=`, `-=` and every shift by a run-time amount in a pipelined
    loop (or a pipelined copy), per copy of the loop body and of the function,
    through the inline functions it calls (a parameter passed a constant is a
    constant there), and every comparison between values (comparator_luts);
    an index's arithmetic at the bits of the dimension it addresses
    (_ArithWalk.address_bits). Not counted: loop headers, the sequential
    FSMs' arithmetic (control)."""
    walk = _ArithWalk(src)
    for f in src.functions.values():
        if f.inline or f.name == PACKED_MUL:
            continue
        pc, sc = instances.get(f.name, (0, 0))
        if pc + sc:
            walk.walk(f.name, f, pc + sc, {}, set(), pc > 0 and sc == 0, (f.name,))
    items = []
    for (root, fname, op, left, right), (n, each, what, resource) in walk.found.items():
        if n:
            name = f"{root}: {fname}: {left} {op} {right}" if root != fname else \
                f"{fname}: {left} {op} {right}"
            it = Item("add", name, n, f"{what}, {each:g} {resource.upper()} each")
            setattr(it, resource, n * each)
            items.append(it)
    return items


# ----------------------------------------------------------------- the estimate

#: Estimates already made, keyed by their arguments and the sources' stat
#: (parsing the HLS takes most of a second; a report asks once per board).
_ESTIMATES = {}


def _fingerprint(*paths):
    """(path, mtime, size) of every file under the given files or directories."""
    out = []
    for top in paths:
        if os.path.isfile(top):
            st = os.stat(top)
            out.append((top, st.st_mtime_ns, st.st_size))
            continue
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                st = os.stat(os.path.join(root, name))
                out.append((os.path.join(root, name), st.st_mtime_ns, st.st_size))
    return tuple(out)


def estimate(board, directory=None, config=None):
    """The Estimate of `board` (a name of ctrain.boards.BOARDS). `directory`
    (the hls/ sources) and `config` (a config header path) read other copies.
    Made once per board and state of the sources; each call gets its own copy."""
    key = (board, directory, config,
           _fingerprint(directory or hls_dir(), config or config_dir(), isa_header()))
    if key not in _ESTIMATES:
        _ESTIMATES[key] = _estimate(board, directory, config)
    return copy.deepcopy(_ESTIMATES[key])


def _estimate(board, directory, config):
    b = boards.get(board) if config is None else boards.load(config)
    header = config or os.path.join(config_dir(), f"{b.name}.h")
    src = Sources(header, directory)
    inst = src.instances()
    arrs = arrays(src)
    copies = {n: p + q for n, (p, q) in inst.items()}
    items = [_array_item(a, copies.get(a.function, 0)) for a in arrs if copies.get(a.function, 0)]
    items += operators(src, inst, b.dsp_kind)
    items += packed_muls(src, inst, dsp_int8(b))
    items += multiplexers(src, arrs, copies)
    items += shared_selects(src)
    items += axi_adapters(src, b)
    items += fabric_arith(src, inst)
    used = {r: sum(getattr(i, r) for i in items) for r in RESOURCES}
    avail = {"dsp": b.chip_dsp, "bram36": b.chip_bram36, "uram": b.chip_uram, "lut": b.chip_lut}
    return Estimate(b.name, {r: {"used": used[r], "available": avail[r]} for r in RESOURCES}, items,
                    peaks(b, pe_products(src, items)))


M_AXI = re.compile(r"#pragma\s+HLS\s+INTERFACE\b[^\n]*\bm_axi\b[^\n]*\bbundle\s*=\s*(\w+)", re.I)


def _maxi_depth(pragma, ch):
    """Beats of a bundle's `ch` (read, write) data FIFO: outstanding x burst length."""
    def opt(name):
        m = re.search(rf"\b{name}\s*=\s*(\d+)", pragma)
        return int(m.group(1)) if m else MAXI_DEFAULT
    return opt(f"num_{ch}_outstanding") * opt(f"max_{ch}_burst_length")


def axi_adapters(src, b, top="ctrain_top"):
    """Items of the m_axi adapters beyond the first: one per further bundle of
    the top's INTERFACE pragmas (its synthesis branch for the board), each
    MAXI_ADAPTER_LUT LUTs and its read- and write-data FIFOs as BRAM."""
    f = src.functions.get(top)
    pragmas = {}
    for m in M_AXI.finditer(f.body if f else ""):
        end = f.body.find("\n", m.start())
        pragmas.setdefault(m.group(1), f.body[m.start():end if end >= 0 else None])
    out = []
    bits = 8 * b.ddr_beat
    for name in sorted(pragmas)[1:]:
        rd, wr = _maxi_depth(pragmas[name], "read"), _maxi_depth(pragmas[name], "write")
        ramb18 = bram18_per_bank(rd, bits + 2) + bram18_per_bank(wr, bits + bits // 8)
        out.append(Item("axi", f"{top}: m_axi adapter {name}", 1,
                        f"{rd} x {bits + 2} bit read data + {wr} x "
                        f"{bits + bits // 8} bit write data FIFOs, {MAXI_ADAPTER_LUT} LUT",
                        bram36=ramb18 / 2, lut=MAXI_ADAPTER_LUT))
    return out


def dsp_int8(b):
    """int8 products per DSP slice (CTRAIN_DSP_INT8): 2 only on DSP48E2, whose
    27-bit port holds b1 * 2^18 + b0 (WP486); DSP48E1's 25-bit port cannot."""
    n = int(b.macros["DSP_INT8"])
    if n not in (1, 2) or n == 2 and b.dsp_kind != "DSP48E2":
        raise ValueError(f"{b.name}: CTRAIN_DSP_INT8 {n} on {b.dsp_kind} (2 needs DSP48E2, else 1)")
    return n


def part_clock_mhz(b):
    """The clock a full-chip int8 DSP array closes on the board's part
    (CTRAIN_PART_CLOCK_MHZ; sources in the config header and docs/overlay.md)."""
    return float(b.macros["PART_CLOCK_MHZ"])


def peaks(b, products):
    """Int8 GOP/s: the design's (2 ops x the int8 products per cycle of its
    largest multiplier array, as counted from the sources, pe_products, x
    CTRAIN_CLOCK_MHZ) and the chip's (DSPs x int8 products per DSP x 2 x the
    clock the part can close, CTRAIN_PART_CLOCK_MHZ)."""
    return {"pe": 2 * products * b.clock_mhz / 1000,
            "chip_int8": b.chip_dsp * dsp_int8(b) * 2 * part_clock_mhz(b) / 1000,
            "products": products}


def format_resources(est, items=False):
    """A table: resource, used, available, % of the chip, within the margin."""
    lines = [f"{est.board}: {'fits' if est.fits else 'does NOT fit'} "
             f"(every resource <= {FIT_FRACTION:.0%} of the chip)",
             f"{'resource':<8} {'used':>10} {'available':>10} {'%':>7}  ok"]
    for r in RESOURCES:
        u, a = est.resources[r]["used"], est.resources[r]["available"]
        pct = 100.0 * u / a if a else (0.0 if u == 0 else float("inf"))
        ok = u <= FIT_FRACTION * a
        lines.append(f"{r:<8} {u:>10g} {a:>10g} {pct:>6.1f}%  {'yes' if ok else 'NO'}")
    if est.peak:
        pe, chip = est.peak["pe"], est.peak["chip_int8"]
        ok = est.peak_fraction >= PE_PEAK_MIN_FRACTION
        lines.append(f"int8 GOP/s: the design {pe:g} ({est.peak['products']} products/cycle) of the chip's "
                     f"{chip:g} ({100 * est.peak_fraction:.0f}%, at least {PE_PEAK_MIN_FRACTION:.0%}: "
                     f"{'yes' if ok else 'NO'})")
    if items:
        lines.append("")
        for it in sorted(est.items, key=lambda i: -(i.dsp * 100 + i.bram36 * 200 + i.uram * 300 + i.lut)):
            cost = ", ".join(f"{r} {getattr(it, r):g}" for r in RESOURCES if getattr(it, r))
            if cost:
                lines.append(f"  {it.kind:<5} {it.name}  [{it.count}]  {it.detail}: {cost}")
    return "\n".join(lines)


def markdown_table(names=None):
    """The docs/overlay.md table: per board array, clocks, resources and peaks."""
    rows = ["| board | PE array (L x R x C) | clock | DSP | BRAM36 | URAM | LUT | fits "
            "| peak GOP/s (products / cycle) | chip int8 peak GOP/s (part clock) | peak / chip |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in names or boards.BOARDS:
        b, est = boards.get(n), estimate(n)

        def cell(r):
            u, a = est.resources[r]["used"], est.resources[r]["available"]
            return f"{u:g} / {a:g} ({100 * u / a:.0f}%)" if a else f"{u:g} / 0"
        rows.append(f"| {n} | {b.pe_lanes} x {b.pe_rows} x {b.pe_cols} | {b.clock_mhz} MHz | " +
                    " | ".join(cell(r) for r in RESOURCES) +
                    f" | {'yes' if est.fits else 'NO'} | {est.peak['pe']:g} ({est.peak['products']}) "
                    f"| {est.peak['chip_int8']:g} "
                    f"({part_clock_mhz(b):g} MHz) | {100 * est.peak_fraction:.0f}% |")
    return "\n".join(rows)


def variant_header(board, settings, path):
    """Writes to `path` the board's configuration header with each
    {NAME: value} of `settings` replacing its `#define CTRAIN_NAME` (a what-if
    for the estimate: another array or buffer size); ValueError, one line,
    naming a macro the header does not define."""
    import os

    from ..overlay_src import config_dir
    text = open(os.path.join(config_dir(), f"{board}.h")).read()
    for name, value in settings.items():
        macro = name if name.startswith("CTRAIN_") else "CTRAIN_" + name
        text, n = re.subn(rf"^(#define {macro})[ \t]+\S+", rf"\g<1> {value}", text, flags=re.M)
        if n != 1:
            raise ValueError(f"--set {name}={value}: {board}.h defines no {macro}")
    with open(path, "w") as f:
        f.write(text)
    return path


def main(argv=None):
    """python -m ctrain.tools.resources [board ...] [--items] [--markdown]
    [--set NAME=VALUE ...]: the tables; --set estimates each board with its
    header's CTRAIN_NAME changed (e.g. `zcu102 --set PE_ROWS=8`: what would
    fit), nothing written to the configuration."""
    import argparse
    import os
    import sys
    import tempfile
    ap = argparse.ArgumentParser(prog="python -m ctrain.tools.resources")
    ap.add_argument("boards", nargs="*", help="boards (default: all)")
    ap.add_argument("--items", action="store_true", help="every counted item")
    ap.add_argument("--markdown", action="store_true", help="the docs/overlay.md table")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="estimate with the header's CTRAIN_NAME set to VALUE (repeatable)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)

    def fail(msg):   # one line naming the problem, before any estimate
        print(f"{ap.prog}: {msg}", file=sys.stderr)
        raise SystemExit(2)
    names = args.boards or list(boards.BOARDS)
    unknown = [n for n in names if n not in boards.BOARDS]
    if unknown:
        fail(f"unknown board {unknown[0]} (one of {', '.join(boards.BOARDS)})")
    settings = {}
    for kv in args.set:
        name, eq, value = kv.partition("=")
        if not eq or not name or not value:
            fail(f"--set {kv}: expected NAME=VALUE")
        settings[name] = value
    if args.markdown and not settings:
        print(markdown_table(names))
        return
    with tempfile.TemporaryDirectory() as tmp:
        configs = {}
        for n in names:
            try:
                configs[n] = variant_header(n, settings, os.path.join(tmp, f"{n}.h")) if settings else None
            except ValueError as e:
                fail(str(e))
        for n in names:
            print(format_resources(estimate(n, config=configs[n]), items=args.items))
            print()


if __name__ == "__main__":
    main()
