"""Port budget: what a pipelined loop asks of each memory bank per cycle
against the ports that bank has.

A loop pipelined at II=n starts an iteration every n cycles only if every
bank of every array it touches serves that iteration's accesses in n cycles
(UG1399, "Array Accesses and Performance"; BIND_STORAGE): `ram_1p` one
access a cycle, `ram_2p` (the default, and distributed RAM's RAM64X1D) two
with at most one write, `ram_t2p` two of either kind. Synthesis otherwise
raises the II, which the C-sim's counters and the cycle model would not
see: session 26 found two tap finders reading MAX_KK - 1 pointers a step
from a 2-port RAM this way. This pass counts, for every pipelined loop (and
pipelined function) that reaches an array, the accesses its busiest bank
takes per iteration:

- every access in the loop body and in the functions it calls, the arrays
  followed through array and pointer parameters (a leading subscript in the argument
  names the banks the callee sees) and templates read per call;
- each copy of the unrolled loops an index depends on is one access; an
  index is evaluated per copy (locals assigned once read through): exact,
  its bank is known; else a cyclic bank is known where the index is an
  aligned base plus a per-copy part (resources._aligned), and otherwise the
  access may take any bank (HLS cannot tell either);
- one word is one access: copies that read the same element, or elements
  of one word of a reshaped dimension, share it; `x[i] op= v` is a read and
  a write;
- the arms of an `if`/`else` or a `?:` add up like the rest: exclusive
  accesses share a port only where HLS schedules them in one stage
  (UG1448, HLS 200-885, shows two arms that do not), which the source does
  not tell. A loop that needs one port for either arm reads at a selected
  address instead (pe_array's `a2`, sp_steps' `rb_now`, avgpool_band's
  `w0`/`w1`).

At II=n every access of an iteration takes a port slot of its bank once in
n cycles whatever stage it is scheduled in, so the count is the modulo
schedule's own bound. Registers (banks one
element deep) have no port limit. Usage: `python -m ctrain.tools.ports
[--shared-channels] [board ...]`: one line per loop over budget and a
summary; exit 1 if any (`make -C overlay check` runs it without the flag).

A DATAFLOW channel (a ping-pong array between two processes) is judged
from its consumer's side with both ports of each bank, as if each buffer
were a memory of its own. The resource estimate lays the buffers out as
one memory per bank, twice as deep (UG1399: a PIPO is "twice the size of
the original array"); there the producer and the consumer would have one
port each. `--shared-channels` judges by that layout, to show which loops
depend on the difference: which one Vitis HLS builds, only a synthesis
report can say.
"""
import argparse
import itertools
import math
import os
import re
import sys
from dataclasses import dataclass, replace

from .. import boards
from ..hls_source import Sources, enclosing, parse_loops, substitute
from ..overlay_src import config_dir
from . import resources

_IDENT = re.compile(r"[A-Za-z_]\w*")
#: A name that is not a struct member (`st.a0.q`: st only).
_OPERAND = re.compile(r"(?<![.\w>])[A-Za-z_]\w*")
_II = re.compile(r"#pragma\s+HLS\s+PIPELINE\b([^\n]*)", re.I)


@dataclass
class Overuse:
    """One pipelined loop whose accesses to one bank exceed its ports."""
    function: str
    loop: str            # label, or "(function)" for a pipelined function
    line: int
    array: str           # owner:name
    reads: int
    writes: int
    ports: int           # accesses the bank serves per iteration (2 x II, 1 x II for ram_1p)
    bank: tuple          # the busiest bank's index along each banked dimension
    sites: list          # (access text, accesses of that bank)

    def __str__(self):
        what = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in self.sites)
        return (f"{self.function}:{self.loop} (line {self.line}): {self.array} bank {list(self.bank)}: "
                f"{self.reads} read(s) and {self.writes} write(s) per iteration, {self.ports} port slot(s): "
                f"{what}")


def _budget(a, ii, shared=False):
    """(accesses, writes) a bank of `a` serves in `ii` cycles; with `shared`,
    a DATAFLOW channel's bank (its buffers one memory, as the resource
    estimate lays them out) serves each side, producer or consumer, on one
    port of its own."""
    if a.ports == 1 or (shared and a.buffers > 1):
        return ii, ii
    return 2 * ii, (2 if a.true_dual else 1) * ii


def _pipelines(src, f):
    """(label, start, end, II) of f's pipelined regions: its pipelined loops,
    or its whole body where the PIPELINE pragma stands outside every loop."""
    out = []
    for lp in f.loops:
        if lp.pipelined:
            own = f.body[lp.start:lp.end]
            m = _II.search(own)
            out.append((lp.label or f"loop@{lp.start}", lp.start, lp.end, _ii(src, f, m)))
    for m in _II.finditer(f.body):
        if "off" not in m.group(1).lower() and not enclosing(f.loops, m.start()):
            out.append(("(function)", 0, len(f.body), _ii(src, f, m)))
    return out


def _ii(src, f, m):
    """The II a PIPELINE pragma asks (a constant expression; 1 if none)."""
    ii = re.search(r"\bII\s*=\s*(\S+)", m.group(1)) if m else None
    vals = [v for v in src.eval_in(f, ii.group(1)) if v is not None] if ii else [1]
    return min(vals, default=1)


_NAME = re.compile(r"(?<![.\w>])([A-Za-z_]\w*)\b(?!\s*(?:\(|\.|->|<))")


def _expand(src, f, pos, expr):
    """expr with f's locals assigned once replaced by their values, four
    levels deep (`i = w * LANES + j` read through)."""
    al = resources._Alignment(src, f, pos, 1)
    unrolled = src.unrolled_vars(f, pos)

    def sub(m):
        n = m.group(1)
        if n in unrolled or n in f.template or n in src.macros.text:
            return n
        v = al.local_value(n)
        return f"({v.strip()})" if v is not None else n
    for _ in range(4):
        new = _NAME.sub(sub, expr)
        if new == expr:
            break
        expr = new
    return expr


def _terms(s):
    """The top-level summands of s, through casts and parentheses."""
    s = resources.LEAD_CAST.sub("", s.strip())
    while s.startswith("(") and s.endswith(")") and resources._balanced(s[1:-1]):
        s = s[1:-1].strip()
    parts = resources._split_top(s, "+")
    return [t for p in parts for t in _terms(p)] if len(parts) > 1 else [s]


class _Dim:
    """One subscript of an access, in the function (and position) it is written in."""

    def __init__(self, src, f, pos, expr, facts=None):
        self.src, self.f, self.pos, self.facts = src, f, pos, facts or _Facts()
        self._residue = {}
        self.text = _expand(src, f, pos, expr)
        unrolled = {lp.var: lp for lp in enclosing(f.loops, pos) if lp.unrolled and lp.var}
        self.lanes = {v: src.trip(f, lp) for v, lp in unrolled.items()
                      if re.search(rf"\b{re.escape(v)}\b", self.text)}
        terms = _terms(self.text)
        lane = [t for t in terms if any(re.search(rf"\b{re.escape(v)}\b", t) for v in self.lanes)]
        self.base = " + ".join(t for t in terms if t not in lane) or "0"
        self.lane = " + ".join(lane) or "0"

    def value(self, text, vals):
        """The value of `text` in the copy `vals`, None unless one constant."""
        out = set(self.src.eval_in(self.f, substitute(text, vals)))
        return out.pop() if len(out) == 1 else None

    def key(self, a, d, vals):
        """(bank, address) of this subscript of dimension d of `a` in the
        copy `vals` (lane values): the bank a tuple of the banks it may
        take (a dimension that is not banked: ())."""
        v = self.value(self.text, vals)
        lane = self.value(self.lane, vals)
        addr = v if v is not None else re.sub(r"\s+", "", substitute(self.text, vals))
        if d in a.reshaped:
            return (), 0
        if d in a.reshaped_by:
            kind, fac = a.reshaped_by[d]
            if kind == "cyclic":
                if v is not None:
                    addr = v // fac
                elif self.residue(fac) == fac:
                    addr = (re.sub(r"\s+", "", self.base), lane // fac)
        if d in a.partitioned:
            # the bank is the whole index: a read a bank may serve (every
            # bank read at the other subscripts, then a select) is one load
            n = a.dims[d - 1]
            return ((v,) if v is not None else self.banks(lane, n, n),), 0
        if d in a.cyclic:
            kind, fac = a.cyclic[d]
            if v is not None:
                return ((v % fac if kind == "cyclic" else v // math.ceil(a.dims[d - 1] / fac),),), addr
            return (self.banks(lane, fac, fac) if kind == "cyclic" else None,), addr
        return (), addr

    def residue(self, fac):
        """The largest power of two dividing fac that the base is a multiple of."""
        if fac not in self._residue:
            self._residue[fac] = self._residue_of(fac)
        return self._residue[fac]

    def _residue_of(self, fac):
        f = fac & -fac
        while f > 1:
            if all(self.facts.aligned(t.strip(), f) or
                   resources._aligned(self.src, self.f, self.pos, t, f) for t in _terms(self.base)):
                return f
            f //= 2
        return 1

    def banks(self, lane, n, fac):
        """The banks (of n, the index taken modulo fac) a copy with per-copy
        part `lane` may take: those of lane's residue modulo the power of
        two the base is aligned to (all where nothing is known)."""
        if lane is None:
            return None
        r = self.residue(fac)
        return tuple(b for b in range(n) if b % r == lane % r) if r > 1 else None


def _copies(src, a, dims, extra):
    """[(bank key, address key)] of every copy of one access: `dims` its
    subscripts (_Dim), `extra` the copies no subscript tells apart."""
    lanes = {}
    for dm in dims:
        for v, n in dm.lanes.items():
            lanes[(id(dm.f), v)] = n
    names = sorted(lanes)
    total = math.prod(lanes[n] for n in names)
    if total > 4096:   # too many to walk: every copy anywhere
        return [((None,) * len(_bank_dims(a)), ("?", i)) for i in range(total * extra)]
    out = []
    for combo in itertools.product(*(range(lanes[n]) for n in names)):
        assign = dict(zip(names, combo))
        bank, addr = (), ()
        for d, dm in enumerate(dims, start=1):
            vals = {v: x for (fid, v), x in assign.items() if fid == id(dm.f)}
            b, ad = dm.key(a, d, vals)
            bank += b
            addr += (ad,)
        out += [(bank, addr if extra == 1 else addr + (i,)) for i in range(extra)]
    return out


def _access_re(local):
    return re.compile(r"\b" + re.escape(local) + r"((?:\s*\[[^\[\]]*(?:\[[^\]]*\][^\[\]]*)*\])+)")


def _kind(body, end):
    """'r', 'w' or 'rw' of the access ending at `end`."""
    tail = body[end:end + 4].lstrip()
    if re.match(r"(<<|>>|[-+*/%&|^])=", tail) or tail.startswith(("++", "--")):
        return "rw"
    if tail.startswith("=") and not tail.startswith("=="):
        return "w"
    return "r"


def _specialize(src, g, targs):
    """Callee g as one call instantiates it: its template parameters replaced
    by the call's template arguments (a bank's alignment can hold for one
    element size and not another: agu_rd_wide's step is AGU_LANES(SIZE)).
    The copies are this pass's own: src.functions stays the sources'."""
    if not g.template or not targs:
        return g
    name = f"{g.name}<{','.join(t.strip() for t in targs)}>"
    memo = src.__dict__.setdefault("_port_specials", {})
    if name not in memo:
        body = substitute(g.body, {p: f"({v.strip()})" for p, v in zip(g.template, targs)})
        # parameters left to their defaults stay unknown names (no call of
        # the copy to read them from)
        memo[name] = replace(g, name=name, body=body, loops=parse_loops(body), template=[])
    return memo[name]


def _calls(src, f):
    """(callee Function, position, argument texts, template argument texts)
    of every call in f's body (a specialized copy's too)."""
    memo = src.__dict__.setdefault("_port_calls", {})
    if f.name not in memo:
        memo[f.name] = [(src.functions[c], at, args, targs)
                        for c, at, args, targs in src.calls_in(f, f.name.split("<")[0])]
    return memo[f.name]


class _Facts:
    """What a callee knows of its scalar parameters: the call's arguments,
    asked lazily how aligned they are (in the caller's context)."""

    def __init__(self, src=None, f=None, at=0, args=None, outer=None):
        self.src, self.f, self.at, self.args, self.outer = src, f, at, args or {}, outer

    def aligned(self, name, fac):
        """Whether parameter `name` always holds a multiple of fac."""
        arg = self.args.get(name)
        if arg is None:
            return False
        if self.outer is not None and arg in self.outer.args:
            return self.outer.aligned(arg, fac)
        return resources._aligned(self.src, self.f, self.at, arg, fac)


def _bind(src, f, at, g, args, binding, facts):
    """({g's array parameter: (Array, key, leading subscripts)} for the call
    arguments (of a call at `at` in f) that name an array of `binding`,
    g's _Facts)."""
    sub, scalars = {}, {}
    for i, arg in enumerate(args):
        if i >= len(g.params):
            break
        ptype, pname, is_array = g.params[i]
        am = re.fullmatch(r"(\w+)\s*((?:\[[^\[\]]*\])*)", arg.strip())
        if am is not None and am.group(1) in binding and \
                (is_array or "*" in ptype or resources._array_typedef(src, ptype)):
            a, key, lead = binding[am.group(1)]
            sub[pname] = (a, key, lead + [_Dim(src, f, at, e, facts)
                                          for e in re.findall(r"\[([^\[\]]*)\]", am.group(2))])
        elif not is_array and "*" not in ptype:
            scalars[pname] = arg.strip()
    return sub, _Facts(src, f, at, scalars, facts)


class _Walk:
    """The accesses of one pipelined region to the arrays of `binding`,
    the functions it calls followed."""

    def __init__(self, src):
        self.src = src
        self.arrays = {}   # key -> Array
        self.sites = {}    # key -> {(kind, bank, address[, site]): access texts}

    def region(self, f, start, end, binding, facts, extra=1, depth=0):
        for local, (a, key, lead) in binding.items():
            if math.prod(a.bank_dims) <= 1:
                continue   # registers
            for m in _access_re(local).finditer(f.body, start, end):
                if f.body[max(0, m.start() - 2):m.start()].endswith((".", "->")):
                    continue   # a member of the same name
                idx = re.findall(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]", m.group(1))
                dims = (lead + [_Dim(self.src, f, m.start(), e, facts) for e in idx])[:len(a.dims)]
                if len(dims) < len(a.dims):
                    continue   # the array passed on whole (a call's argument)
                self.add(f, m, local, a, key, dims, extra)
        if depth >= 6:
            return
        for g, at, args, targs in _calls(self.src, f):
            if start <= at < end:
                g = _specialize(self.src, g, targs)
                sub, known = _bind(self.src, f, at, g, args, binding, facts)
                if sub:
                    # the call's copies its array arguments do not tell apart
                    names = set()
                    for arg in args:
                        names |= set(_IDENT.findall(arg))
                    seen = set().union(*(set(d.lanes) for _, _, ld in sub.values() for d in ld))
                    k = _more_copies(self.src, f, at, names - seen, seen)
                    self.region(g, 0, len(g.body), sub, known, extra * k, depth + 1)

    def add(self, f, m, local, a, key, dims, extra):
        names = set()
        for d in dims:
            if d.f is f:
                names |= set(_OPERAND.findall(d.text))
        seen = set().union(*(set(d.lanes) for d in dims if d.f is f))
        more = _more_copies(self.src, f, m.start(), names - seen, seen)
        kind = _kind(f.body, m.end())
        text = f"{f.name}: {local}{m.group(1)}"
        self.arrays[key] = a
        slot = self.sites.setdefault(key, {})
        for bank, addr in _copies(self.src, a, dims, extra * more):
            if kind in ("r", "rw"):
                slot.setdefault(("r", bank, addr), set()).add(text)   # reads of one word share it
            if kind in ("w", "rw"):
                # a site's writes of one word are one write (byte enables)
                slot.setdefault(("w", bank, addr, text), set()).add(f"{f.name}: write {local}{m.group(1)}")


def _more_copies(src, f, pos, names, seen):
    """Copies of the unrolled loops around pos (but those over `seen`,
    walked per copy already) that `names` depend on through locals not
    read through: each a distinct access of unknown address."""
    if not names:
        return 1
    deps = src.depends(f, names)
    n = 1
    for lp in enclosing(f.loops, pos):
        if lp.unrolled and lp.var not in seen and src._variants(f, lp) & deps:
            n *= src.trip(f, lp)
    return n


def _scan(src, f, binding, found, judged, facts=None, depth=0, shared=False):
    """Judge f's pipelined regions on the arrays of `binding`; follow the
    calls outside them that pass those arrays on."""
    regions = _pipelines(src, f)
    for label, start, end, ii in regions:
        judged.add((f.name, label))
        w = _Walk(src)
        w.region(f, start, end, binding, facts or _Facts())
        for o in _judge(f, label, start, ii, w, shared):
            found.setdefault((o.function, o.loop, o.array), o)
    if depth >= 6:
        return
    for g, at, args, targs in _calls(src, f):
        if any(s <= at < e for _, s, e, _ in regions):
            continue
        g = _specialize(src, g, targs)
        sub, known = _bind(src, f, at, g, args, binding, facts or _Facts())
        if sub:
            _scan(src, g, sub, found, judged, known, depth + 1, shared)


def overuse(src, arrs=None, stats=None, shared=False):
    """Every (pipelined region, array) whose busiest bank is asked for more
    accesses per iteration than its ports give, from every instantiated
    function that declares RAM-backed arrays (`shared`: _budget's reading
    of DATAFLOW channels, one port a side)."""
    arrs = resources.arrays(src) if arrs is None else arrs
    inst = src.instances()
    own = {}
    for a in arrs:
        if isinstance(a, resources.Array) and sum(inst.get(a.function, (0, 0))):
            own.setdefault(a.function, {})[a.name] = (a, f"{a.function}:{a.name}", [])
    found, judged = {}, set()
    for fn, binding in sorted(own.items()):
        _scan(src, src.functions[fn], binding, found, judged, shared=shared)
    if stats is not None:
        stats["regions"] = len(judged)
    return list(found.values())


def _bank_dims(a):
    return [a.dims[d - 1] if d in a.partitioned else a.cyclic[d][1]
            for d in range(1, len(a.dims) + 1) if d in a.partitioned or d in a.cyclic]


def _judge(f, label, start, ii, walk, shared=False):
    out = []
    for key, accesses in walk.sites.items():
        a = walk.arrays[key]
        sizes = _bank_dims(a)
        load = {}   # bank -> [reads, writes, {access text: accesses}]
        for at, texts in accesses.items():
            k, bank = at[0], at[1]
            for b in itertools.product(*(range(n) if c is None else c for c, n in zip(bank, sizes))):
                slot = load.setdefault(b, [0, 0, {}])
                slot[0 if k == "r" else 1] += 1
                for t in texts:
                    slot[2][t] = slot[2].get(t, 0) + 1
        total, wmax = _budget(a, ii, shared)
        over = [b for b, (r, w, _) in load.items() if r + w > total or w > wmax]
        if over:
            worst = max(over, key=lambda b: load[b][0] + load[b][1])
            r, w, hit = load[worst]
            out.append(Overuse(f.name, label, f.body.count("\n", 0, start) + 1, key, r, w, total, worst,
                               sorted(hit.items())))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ctrain.tools.ports", description=__doc__.splitlines()[0])
    ap.add_argument("boards", nargs="*", metavar="board", help="boards (default: all)")
    ap.add_argument("--shared-channels", action="store_true",
                    help="a DATAFLOW channel's bank one memory for its buffers: one port a side")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    for b in args.boards:
        if b not in boards.BOARDS:
            ap.error(f"unknown board {b!r} (one of {', '.join(boards.BOARDS)})")
    names = args.boards or boards.BOARDS
    bad, regions = 0, 0
    for b in names:
        src = Sources(os.path.join(config_dir(), f"{b}.h"))
        stats = {}
        for o in overuse(src, stats=stats, shared=args.shared_channels):
            print(f"{b}: {o}")
            bad += 1
        regions += stats["regions"]
    print(f"ports: {regions} pipelined regions reaching on-chip arrays on {len(names)} board(s): "
          + (f"{bad} over their banks' ports" if bad else "every one within its banks' ports"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
