"""A reading of the HLS sources sufficient to count what they instantiate.

Not a C++ parser: the sources follow a plain style (one declaration per
statement line, loops with a label and their pragmas on the lines after the
opening brace), and this module reads exactly that. It gives, per function,
its body, the arrays it declares with their pragmas, its loops (label,
pipelined, unrolled, trip bound), the call sites of other functions, and
every binary `*`, `/`, `%` and array access with the loops around it.

Macros are evaluated per board from the ISA header, the board's config
header and the `#define`s of the HLS sources. Preprocessor branches are taken
as synthesis takes them (`__SYNTHESIS__` defined).
"""
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .overlay_src import hls_dir, isa_header

#: Sources the C-sim adds and synthesis never sees.
NOT_SYNTHESISED = ("csim_api.cpp", "csim_api.h")

BASE_WIDTHS = {"bool": 1, "char": 8, "int8_t": 8, "uint8_t": 8, "int16_t": 16, "uint16_t": 16,
               "short": 16, "int": 32, "unsigned": 32, "int32_t": 32, "uint32_t": 32,
               "float": 32, "int64_t": 64, "uint64_t": 64, "long": 64, "double": 64}
_IDENT = re.compile(r"[A-Za-z_]\w*")
_NUM = re.compile(r"^(0x[0-9a-fA-F]+|\d+)[uUlL]*$")


def source_files(directory=None):
    """(name, text) of every synthesised HLS source (.cpp/.h in hls/, not tb/ or config/)."""
    d = directory or hls_dir()
    return [(n, open(os.path.join(d, n), encoding="utf-8").read()) for n in sorted(os.listdir(d))
            if n.endswith((".cpp", ".h")) and n not in NOT_SYNTHESISED
            and os.path.isfile(os.path.join(d, n))]


@lru_cache(maxsize=256)
def strip_comments(text):
    """Comments and string literals blanked, line structure kept. Cached by
    text: a board's macros (Macros) read every source three times, and the
    cycle model builds them per board and macro (perfmodel._hls_macro)."""
    def blank(m):
        s = m.group(0)
        if s.startswith('"'):
            return '""'
        return re.sub(r"[^\n]", " ", s)
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\])*"', blank, text, flags=re.S)


def synthesis_branches(text, macros=None):
    """Drops the lines synthesis does not compile: #if branches on __SYNTHESIS__
    (and CTRAIN_WORD_PORT, which only C-sim sets) taken as synthesis takes them;
    with `macros`, also `#if EXPR` on the board's integer macros (e.g.
    CTRAIN_SPARSE_MUL_LUT)."""
    out, stack = [], []   # stack of [active, decided_by_us, a branch of the chain taken]
    for line in text.split("\n"):
        s = line.strip()
        active = all(a for a, _, _ in stack)
        if s.startswith(("#if", "#ifdef", "#ifndef")):
            a, ours = _if_branch(s, macros)
            stack.append([a, ours, a])
            out.append("")
            continue
        if s.startswith("#elif"):
            # the chain's next test: dropped where an earlier one held, else
            # taken where it holds; a test left to the compiler keeps this
            # branch and every later one
            level = stack[-1]
            if level[1] and level[2]:
                level[0] = False
            else:
                a, ours = _if_branch("#if " + s[len("#elif"):].strip(), macros)
                level[1] = level[1] and ours
                level[0] = a if level[1] else True
                level[2] = level[1] and a
            out.append("")
            continue
        if s.startswith("#else"):
            level = stack[-1]
            level[0] = not level[2] if level[1] else True
            out.append("")
            continue
        if s.startswith("#endif"):
            if stack:
                stack.pop()
            out.append("")
            continue
        out.append(line if active else "")
    return "\n".join(out)


def _if_branch(cond, macros):
    """(active, decided_by_us) of an #if/#ifdef/#ifndef line `cond`: decided
    where it tests __SYNTHESIS__ or (with `macros`) evaluates to an integer,
    else left to the compiler (both branches kept)."""
    value = macros.eval(cond[3:]) if macros is not None and cond.startswith("#if ") else None
    if value is None and macros is not None and cond.startswith("#if ") and \
            re.fullmatch(r"\s*[A-Za-z_]\w*\s*", cond[3:]) and cond[3:].strip() not in macros.text:
        value = 0   # the preprocessor reads an undefined identifier as 0
    if "__SYNTHESIS__" in cond:
        neg = cond.startswith("#ifndef") or "!defined(__SYNTHESIS__)" in cond \
            or "! defined(__SYNTHESIS__)" in cond
        return not neg, True
    if value is not None:
        return bool(value), True
    return True, False


# ----------------------------------------------------------------- macros

def _c_expr(expr):
    expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b", r"\1", expr)
    expr = re.sub(r"\((?:unsigned|int|uint32_t|int64_t|uint64_t|wide_t)\)", "", expr)
    # the preprocessor's logic: `!X`, `a && b`, `a || b`
    expr = re.sub(r"!(?!=)", " not ", expr).replace("&&", " and ").replace("||", " or ")
    return expr.replace("/", "//").replace("////", "//")


@lru_cache(maxsize=32)
def _macro_tables(texts):
    """(object-like macros and enumerators: name -> text, function-like
    macros: name -> ([params], body)) of the texts, the first definition
    winning. Cached by the texts: the cycle model builds a board's Macros
    per macro it reads (perfmodel._hls_macro), each parse a second or so."""
    text, funcs = {}, {}
    for path_text in texts:
        clean = strip_comments(path_text)
        for m in re.finditer(r"^\s*#define\s+([A-Za-z_]\w*)[ \t]+([^\n]+)$", clean, re.M):
            text.setdefault(m.group(1), m.group(2).strip())
        for m in re.finditer(r"^\s*#define\s+([A-Za-z_]\w*)\(([^)]*)\)[ \t]+([^\n\\]+)$", clean, re.M):
            funcs.setdefault(m.group(1), ([a.strip() for a in m.group(2).split(",")], m.group(3).strip()))
        for m in re.finditer(r"\benum\s*\w*\s*\{([^{}]*)\}", clean):
            nxt = "0"
            for item in split_args(m.group(1)):
                name, _, val = item.partition("=")
                name = name.strip()
                if name:
                    text.setdefault(name, val.strip() or nxt)
                    nxt = f"({text[name]}) + 1"
    return text, funcs


class Macros:
    """Integer values of the macros one board's build sees."""

    def __init__(self, config_header, hls_files):
        texts = (open(isa_header(), encoding="utf-8").read(),
                 open(config_header, encoding="utf-8").read()) + tuple(t for _, t in hls_files)
        text, funcs = _macro_tables(texts)
        self.text, self.funcs = dict(text), dict(funcs)
        self._cache = {}

    def value(self, name, _depth=0):
        """The integer value of macro `name`, or None when it is not an integer constant."""
        if name in self._cache:
            return self._cache[name]
        v = self.eval(self.text[name], _depth + 1) if name in self.text and _depth < 20 else None
        self._cache[name] = v
        return v

    def expand(self, expr):
        """Function-like macros in expr replaced by their bodies (arguments
        substituted, parenthesised), innermost first."""
        for _ in range(10):
            m = next((m for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(", expr) if m.group(1) in self.funcs), None)
            if m is None:
                return expr
            p0 = m.end() - 1
            p1 = match_paren(expr, p0)
            params, body = self.funcs[m.group(1)]
            args = split_args(expr[p0 + 1:p1])
            if len(args) != len(params):
                return expr
            for name, a in zip(params, args):
                body = re.sub(rf"\b{re.escape(name)}\b", f"({a})", body)
            expr = expr[:m.start()] + f"({body})" + expr[p1 + 1:]
        return expr

    def eval(self, expr, _depth=0):
        """An integer expression of literals and macros, or None."""
        expr = _c_expr(self.expand(expr.strip()) if self.funcs else expr.strip())
        if not expr:
            return None
        names = set(_IDENT.findall(expr)) - {"not", "and", "or"}
        env = {}
        for n in names:
            v = self.value(n, _depth)
            if v is None:
                return None
            env[n] = v
        try:
            v = eval(expr, {"__builtins__": {}}, env)   # noqa: S307 (literals and macros only)
        except Exception:   # not arithmetic: a string, a type, a cast we do not know
            return None
        # a comparison is 1 or 0, as the preprocessor reads `#if CTRAIN_DSP_INT8 == 2`
        return int(v) if isinstance(v, (int, float)) else None

    def is_constant(self, expr):
        return self.eval(expr) is not None


# ----------------------------------------------------------------- types

class Types:
    """Bit widths of element types: base types, typedefs, ap_(u)int<N>, structs."""

    def __init__(self, texts, macros):
        self.macros = macros
        self.scalar = dict(BASE_WIDTHS)
        self.array_typedefs = {}   # name -> (element type, [dim exprs])
        self.struct_fields = {}    # struct -> {field: width}
        for t in texts:
            for m in re.finditer(r"typedef\s+([\w:<>\s*]+?)\s+(\w+)\s*((?:\[[^\]]+\])+)\s*;", t):
                self.array_typedefs[m.group(2)] = (m.group(1).strip(), re.findall(r"\[([^\]]+)\]",
                                                                                 m.group(3)))
            for m in re.finditer(r"typedef\s+([\w:<>\s*]+?)\s+(\w+)\s*;", t):
                w = self.width(m.group(1).strip())
                if w:
                    self.scalar[m.group(2)] = w
        for t in texts:   # structs after every typedef: their fields use them
            for m in re.finditer(r"(?:typedef\s+)?struct\s*(\w*)\s*\{([^{}]*)\}\s*(\w*)\s*;", t, re.S):
                name = m.group(1) or m.group(3)
                fields = {}
                for fm in re.finditer(r"([\w:<>]+(?:<[^>]*>)?)\s+([^;]+);", m.group(2)):
                    for decl in fm.group(2).split(","):
                        dm = re.match(r"\s*(\w+)\s*((?:\[[^\]]+\])*)", decl)
                        if not dm:
                            continue
                        n = 1
                        for d in re.findall(r"\[([^\]]+)\]", dm.group(2)):
                            n *= macros.eval(d) or 1
                        fields[dm.group(1)] = (self.width(fm.group(1)) or 32) * n
                self.struct_fields[name] = fields
        for name, fields in self.struct_fields.items():
            self.scalar[name] = sum(fields.values())

    def width(self, type_text):
        t = re.sub(r"\b(const|static|volatile|unsigned\s+(?=\w))\b", "", type_text).strip()
        m = re.match(r"ap_u?int\s*<\s*([^>]+)>", t)
        if m:
            return self.macros.eval(m.group(1))
        return self.scalar.get(t)

    def known(self, name):
        return name in self.scalar or name in self.array_typedefs or name.startswith("ap_")


# ----------------------------------------------------------------- functions

@dataclass
class Loop:
    label: str
    start: int          # body span in the function text
    end: int
    var: str
    bound: str          # expression of the trip bound (`i < bound`), may be a variable
    pipelined: bool
    unrolled: bool      # explicit UNROLL, or inside a pipelined loop (HLS unrolls those)
    tripcount_max: str = ""


@dataclass
class Function:
    name: str
    file: str
    signature: str
    body: str
    inline: bool
    params: list = field(default_factory=list)   # [(type, name, is_array)]
    loops: list = field(default_factory=list)
    template: list = field(default_factory=list)  # names of template parameters


def _match(text, i, opening, close):
    """Index of the `close` bracket that balances the first `opening` from i."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == opening:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def match_brace(text, i):
    return _match(text, i, "{", "}")


def match_paren(text, i):
    return _match(text, i, "(", ")")


def split_args(s):
    """Top-level comma split of an argument list."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([<{":
            depth += 1
        elif ch in ")]>}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [a.strip() for a in out]


def parse_functions(name, text, macros=None):
    """Function definitions at file scope (templates included)."""
    text = synthesis_branches(strip_comments(text), macros)
    funcs, i, depth, last = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            head = text[last:i]
            head_lines = [ln for ln in head.split("\n") if not ln.strip().startswith("#")]
            head = "\n".join(head_lines).strip()
            end = match_brace(text, i)
            m = re.search(r"(\w+)\s*\(", head)
            if m and not re.match(r"\s*(struct|enum|union|namespace|typedef)\b", head) and head.endswith(")") \
                    or (m and re.search(r"\)\s*const\s*$", head)):
                fname = m.group(1)
                body = text[i + 1:end]
                sig = head
                p0 = head.index("(", m.start())
                params = []
                for a in split_args(head[p0 + 1:match_paren(head, p0)]):
                    pm = re.match(r"(.*?)([A-Za-z_]\w*)\s*((?:\[[^\]]*\])*)\s*$", a.replace("&", " "))
                    if pm:
                        params.append((pm.group(1).strip(), pm.group(2), bool(pm.group(3))))
                inline = bool(re.search(r"\binline\b", head)) or bool(
                    re.match(r"\s*#pragma\s+HLS\s+INLINE\s*(\n|$)", body, re.I))
                f = Function(fname, name, sig, body, inline, params)
                tm = re.search(r"template\s*<([^>]*)>", text[last:i])
                if tm:
                    f.template = [a.split()[-1] for a in split_args(tm.group(1)) if a.split()]
                f.loops = parse_loops(body)
                funcs.append(f)
            i = end + 1
            last = i
            continue
        if ch == ";" and depth == 0:
            last = i + 1
        i += 1
    return funcs


_PRAGMA = re.compile(r"#pragma\s+HLS\s+(\w+)([^\n]*)", re.I)


def _loop_header(header):
    """(variable, bound) of a `for (v = ...; v < BOUND; ...)` header: the
    bound of `<=` plus one, only the first clause of an `&&`, less a
    literal start (`v = 1`: BOUND - 1 trips); ("", "") for anything else
    (while loops)."""
    parts = header.split(";")
    var, bound = "", ""
    if len(parts) == 3:
        vm = re.search(r"(\w+)\s*=\s*(.*)$", parts[0].strip())
        var = vm.group(1) if vm else ""
        start = vm.group(2).strip() if vm else ""
        cm = re.match(r"\s*(\w+)\s*<=?\s*(.+)$", parts[1].strip())
        if cm:
            bound = cm.group(2).strip()
            if "&&" in bound:
                bound = bound.split("&&")[0].strip()
            if "<=" in parts[1]:
                bound = f"({bound}) + 1"
            if re.fullmatch(r"[1-9]\d*", start):
                bound = f"({bound}) - {start}"
    return var, bound


def _loop_pragmas(own):
    """(pipelined, fully unrolled, LOOP_TRIPCOUNT max) of a loop from the
    pragmas directly inside its body `own` (before any nested loop)."""
    nested = re.search(r"\b(?:for|while)\s*\(", own)
    own = own[:nested.start()] if nested else own
    pragmas = [(k.upper(), v) for k, v in _PRAGMA.findall(own)]
    unroll = any(k == "UNROLL" and "factor" not in v.lower() for k, v in pragmas)
    pipe = any(k == "PIPELINE" and "off" not in v.lower() for k, v in pragmas)
    trip = next((re.search(r"max\s*=\s*(\S+)", v).group(1) for k, v in pragmas
                 if k == "LOOP_TRIPCOUNT" and re.search(r"max\s*=", v)), "")
    return pipe, unroll, trip


def parse_loops(body):
    loops = []
    for m in re.finditer(r"(?:(\w+)\s*:\s*)?\b(?:for|while)\s*\(", body):
        p0 = m.end() - 1
        p1 = match_paren(body, p0)
        header = body[p0 + 1:p1]
        rest = body[p1 + 1:]
        if not rest.lstrip().startswith("{"):
            continue
        b0 = p1 + 1 + rest.index("{")
        b1 = match_brace(body, b0)
        var, bound = _loop_header(header)
        pipe, unroll, trip = _loop_pragmas(body[b0 + 1:b1])
        loops.append(Loop(m.group(1) or "", b0, b1, var, bound, pipe, unroll, trip))
    for lp in loops:   # loops nested in a pipelined loop are unrolled by HLS
        if any(o.pipelined and o.start < lp.start and lp.end <= o.end for o in loops):
            lp.unrolled = True
    return loops


def substitute(text, values):
    """text with each name of `values` (whole words) replaced by its value's text."""
    for name, v in values.items():
        text = re.sub(rf"\b{re.escape(name)}\b", str(v), text)
    return text


def enclosing(loops, pos):
    return [lp for lp in loops if lp.start < pos <= lp.end]


class Sources:
    """Every synthesised function of the HLS sources, with types and one board's macros."""

    def __init__(self, config_header, directory=None):
        files = source_files(directory)
        self.files = files
        self.macros = Macros(config_header, files)
        texts = [strip_comments(open(isa_header(), encoding="utf-8").read())] + \
                [synthesis_branches(strip_comments(t), self.macros) for _, t in files]
        self.types = Types(texts, self.macros)
        self.functions = {}
        for name, text in files:
            for f in parse_functions(name, text, self.macros):
                if f.name in self.functions:   # overloads: one entry, bodies joined
                    g = self.functions[f.name]
                    off = len(g.body) + 1
                    for lp in f.loops:
                        lp.start += off
                        lp.end += off
                    g.body += "\n" + f.body
                    g.loops += f.loops
                else:
                    self.functions[f.name] = f

    def template_values(self, fname, param, _depth=0):
        """Values a template parameter takes at the call sites (None where not
        a constant); an argument naming the caller's own template parameters
        takes each of their values in turn."""
        f = self.functions[fname]
        k = f.template.index(param)
        out = []
        for caller, callee, _, _, t in self.call_sites():
            if callee != fname:
                continue
            if k >= len(t):
                out.append(None)
                continue
            out += self.eval_in(self.functions[caller], t[k], _depth + 1)
        return out

    def eval_in(self, f, expr, _depth=0):
        """The values an integer expression takes in function f: macros, and f's
        template parameters at every instantiation ([None] when unknown)."""
        v = self.macros.eval(expr)
        if v is not None:
            return [v]
        params = [p for p in f.template if re.search(rf"\b{re.escape(p)}\b", expr)]
        if not params or _depth > 6:
            return [None]
        combos = [{}]
        for p in params:
            vals = self.template_values(f.name, p, _depth)
            combos = [dict(c, **{p: v}) for c in combos for v in set(vals)]
        out = []
        for c in combos:
            if any(v is None for v in c.values()):
                out.append(None)
                continue
            e = expr
            for p, v in c.items():
                e = re.sub(rf"\b{re.escape(p)}\b", str(v), e)
            out.append(self.macros.eval(e))
        return out or [None]

    def unroll_factor(self, f, pos, names=None):
        key = (f.name, pos, None if names is None else frozenset(names))
        memo = self.__dict__.setdefault("_unroll", {})
        if key not in memo:
            memo[key] = self._unroll_factor(f, pos, names)
        return memo[key]

    def _unroll_factor(self, f, pos, names=None):
        """Copies the unrolled loops around `pos` in f make of what is there.
        With `names` (the identifiers of an expression), loops the expression
        does not depend on are left out: their copies are one (HLS shares
        them, the unrolled copies being the same expression). It depends on
        a loop where its names, closed over f's assignments (`depends`),
        meet the loop's variants: its index, every name declared inside it,
        except a `const` local whose initializer depends on no variant (`const
        bool on = live && c < vc;` inside a loop over r is the same in every
        copy of r: since session 25; before, every name declared inside a
        loop made its copies)."""
        n = 1
        deps = self.depends(f, names) if names is not None else None
        for lp in enclosing(f.loops, pos):
            if lp.unrolled and deps is not None and not self._variants(f, lp) & deps:
                continue
            if lp.unrolled:
                n *= self.trip(f, lp)
        return n

    def trip(self, f, lp):
        """Trips of loop lp of f: its bound, else its LOOP_TRIPCOUNT max; a
        bound of template parameters its largest instantiation (1 unknown)."""
        vals = [v for v in self.eval_in(f, lp.bound) if v is not None] if lp.bound else []
        if not vals and lp.tripcount_max:
            vals = [v for v in self.eval_in(f, lp.tripcount_max) if v is not None]
        return max(int(max(vals, default=1)), 1)

    def _variants(self, f, lp):
        """The names that can differ between the unrolled copies of loop lp:
        its index, the names the body changes, and the names declared inside
        it, less the `const` locals whose initializers depend on none of them
        and the nested loops' indices whose bounds do not (_unroll_factor)."""
        memo = self.__dict__.setdefault("_variant", {})
        key = (f.name, lp.start)
        if key not in memo:
            const, variant = self._declared_in(f, lp)
            variant |= self._changed_in(f, lp)
            variant -= {q.var for q in f.loops if q is not lp and lp.start <= q.start < lp.end} - {lp.var}
            for name in [n for n in const if n in variant]:
                del const[name]   # declared again or changed, not const there
            grown = True
            while grown:
                grown = False
                for name, ids in const.items():
                    if name not in variant and ids & variant:
                        variant.add(name)
                        grown = True
            memo[key] = variant
        return memo[key]

    def _declared_in(self, f, lp):
        """({const local or nested loop index: the names its value comes
        from}, {lp's index and the other names declared inside lp})."""
        inner = f.body[lp.start:lp.end]
        # a nested loop's index takes the same values in every copy unless
        # its bound is a variant
        const = {q.var: set(_IDENT.findall(q.bound or "")) for q in f.loops
                 if q is not lp and lp.start <= q.start < lp.end and q.var}
        nested = set(const)
        variant = {lp.var}
        for m in re.finditer(r"(\bconst\s+)?\b[A-Za-z_][\w:]*(?:<[^;>()]*>)?\s+([A-Za-z_]\w*)\s*([=\[;])", inner):
            if m.group(2) in nested:
                continue
            if m.group(1) and m.group(3) == "=" and m.group(2) not in const:
                const[m.group(2)] = set(_IDENT.findall(inner[m.end():inner.find(";", m.end())]))
            else:
                variant.add(m.group(2))
        return const, variant

    def _changed_in(self, f, lp):
        """The names lp's body changes (`x = `, `x += `, `x++`, a call's
        non-const reference argument): each copy sees the changes of the
        copies before it (conv_cursor_add(p, ...))."""
        inner = f.body[lp.start:lp.end]
        changed = set(re.findall(r"(?:\+\+|--)\s*([A-Za-z_]\w*)", inner))
        for m in re.finditer(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])*(?:\.\w+)*\s*"
                             r"(?:[-+*/|&^]?=(?!=)|<<=|>>=|\+\+|--)", inner):
            prev = re.search(r"(\w+|>)\s*$", inner[:m.start()])
            if not prev or prev.group(1) in ("else", "return", "do"):
                changed.add(m.group(1))   # not a declaration's initializer
        for caller, callee, at, args, _ in self.call_sites():
            if caller == f.name and lp.start <= at < lp.end:
                for i in self._ref_params(callee):
                    if i < len(args) and _IDENT.match(args[i].strip()):
                        changed.add(_IDENT.match(args[i].strip()).group(0))
        return changed

    def _ref_params(self, name):
        """Indices of a function's parameters it may change: references and
        pointers not declared const."""
        g = self.functions[name]
        head = g.signature[g.signature.index("(") + 1:g.signature.rindex(")")]
        return [i for i, a in enumerate(split_args(head)) if re.search(r"[&*]", a) and
                not re.match(r"\s*const\b", a)]

    def unrolled_vars(self, f, pos):
        """Indices of the unrolled loops around pos: constants in each copy."""
        return {lp.var for lp in enclosing(f.loops, pos) if lp.unrolled and lp.var}

    def call_sites(self):
        """[(caller, callee, position in caller body, argument texts, template argument texts)]."""
        if getattr(self, "_sites", None) is not None:
            return self._sites
        sites = []
        for f in self.functions.values():
            sites += [(f.name, *c) for c in self.calls_in(f)]
        self._sites = sites
        return sites

    def calls_in(self, f, name=None):
        """[(callee, position, argument texts, template argument texts)] of
        the calls in f's body (`name`: f's own, where f is a copy of a
        function under another name)."""
        out = []
        for m in re.finditer(r"\b(\w+)\s*(<[^;()]*?>)?\s*\(", f.body):
            if m.group(1) in self.functions and m.group(1) != (name or f.name):
                p0 = m.end() - 1
                args = split_args(f.body[p0 + 1:match_paren(f.body, p0)])
                targs = split_args(m.group(2)[1:-1]) if m.group(2) else []
                out.append((m.group(1), m.start(), args, targs))
        return out

    def in_pipeline(self, f, pos):
        return any(lp.pipelined for lp in enclosing(f.loops, pos))

    def instances(self, top="ctrain_top"):
        """{function: (pipelined copies, sequential copies)}: each call site makes
        one copy per copy of its caller and per unrolled iteration around it
        (HLS shares nothing across call sites unless told; pessimistic). A copy
        is pipelined when its call site is inside a pipelined loop, or its
        caller's copy is."""
        sites = self.call_sites()
        memo = {top: (0, 1)}

        def count(name, stack=()):
            if name in memo:
                return memo[name]
            per = {}
            for caller, callee, pos, _, _ in sites:
                if callee == name and caller not in stack:
                    cf = self.functions[caller]
                    k = self.unroll_factor(cf, pos)
                    cp, cs = count(caller, stack + (name,))
                    q = per.setdefault(caller, [0, 0, cp + cs])
                    if self.in_pipeline(cf, pos):
                        q[0] += k * (cp + cs)
                    else:
                        q[0] += k * cp
                        q[1] += k * cs
            memo[name] = self._allocated(name, per)
            return memo[name]

        return {n: count(n) for n in self.functions}

    def depends(self, f, names):
        """`names` and every local of f they are computed from (assignments), closed."""
        deps = set(names)
        # a right side ends at `;`, or at the `{` of a loop body after a
        # `for` header's step (`i += N) {`)
        assigns = re.findall(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])*\s*[-+*/|&]?=(?!=)\s*([^;{]+)[;{]", f.body)
        for _ in range(6):
            grown = set(deps)
            for lhs, rhs in assigns:
                if lhs in deps:
                    grown |= set(_IDENT.findall(rhs))
            if grown == deps:
                break
            deps = grown
        return deps

    def copies_of(self, fname, names, top="ctrain_top", _stack=()):
        """(pipelined, sequential) copies of an expression over `names` in fname:
        like instances(), but the unrolled loops around a call to an inline
        function only copy it when the arguments the expression depends on
        vary with the loop (otherwise HLS computes it once)."""
        if fname == top:
            return (0, 1)
        key = (fname, None if names is None else frozenset(names), _stack)
        memo = self.__dict__.setdefault("_copies", {})
        if key in memo:
            return memo[key]
        memo[key] = self._copies_of(fname, names, top, _stack)
        return memo[key]

    def _copies_of(self, fname, names, top, _stack):
        f = self.functions[fname]
        deps = self.depends(f, names) if names is not None else None
        per = {}
        for caller, callee, pos, args, _ in self.call_sites():
            if callee != fname or caller in _stack:
                continue
            cf = self.functions[caller]
            arg_names = None
            if f.inline and deps is not None:
                arg_names = []
                for i, (_, pname, _) in enumerate(f.params):
                    if pname in deps and i < len(args):
                        arg_names += _IDENT.findall(args[i])
            k = self.unroll_factor(cf, pos, arg_names)
            cp, cs = self.copies_of(caller, arg_names if cf.inline else None, top, _stack + (fname,))
            q = per.setdefault(caller, [0, 0, cp + cs])
            if self.in_pipeline(cf, pos):
                q[0] += k * (cp + cs)
            else:
                q[0] += k * cp
                q[1] += k * cs
        return self._allocated(fname, per)

    def allocation_limits(self):
        """{(caller, callee): limit} of `#pragma HLS ALLOCATION function
        instances=callee limit=N` in the caller's body.  UG1399 (pragma HLS
        allocation): the limit caps the RTL instances of a (not inlined)
        function; all its call sites in that scope share them."""
        memo = self.__dict__.get("_alloc")
        if memo is None:
            memo = {}
            for f in self.functions.values():
                for m in re.finditer(r"#pragma\s+HLS\s+ALLOCATION\b([^\n]*)", f.body, re.I):
                    opts = dict(re.findall(r"(\w+)\s*=\s*(\S+)", m.group(1)))
                    opts = {k.lower(): v for k, v in opts.items()}
                    kind = opts.get("type", "function" if "function" in m.group(1).lower().split()
                                    else "operation").lower()
                    if kind == "function" and "instances" in opts and "limit" in opts:
                        for callee in opts["instances"].split(","):
                            memo[(f.name, callee.strip())] = int(opts["limit"])
            self._alloc = memo
        return memo

    def alloc_scope(self, caller, name, _stack=()):
        """The function whose ALLOCATION limit on `name` covers the calls in
        `caller`: the caller when it states one; for an inline caller (a stage
        split out of a unit, HLS INLINE), the one scope every call of it
        resolves to, as HLS inlines it there before it allocates; else the
        caller."""
        limits = self.allocation_limits()
        if (caller, name) in limits or not self.functions[caller].inline or caller in _stack:
            return caller
        ups = {self.alloc_scope(c, name, _stack + (caller,))
               for c, callee, _, _, _ in self.call_sites() if callee == caller}
        if len(ups) == 1:
            up = ups.pop()
            if (up, name) in limits:
                return up
        return caller

    def _allocated(self, name, per):
        """(pipelined, sequential) copies of `name` summed over its callers
        ({caller: [p, s, caller copies]}), each ALLOCATION scope's share capped
        (limit instances per copy of the scope; alloc_scope: the calls of the
        inline functions a scope calls count in it, and a scope's copies are
        its callers' most, each called once per copy of the scope)."""
        limits = self.allocation_limits()
        f = self.functions[name]
        scoped = {}
        for caller, (cp, cs, copies) in per.items():
            q = scoped.setdefault(caller if f.inline else self.alloc_scope(caller, name), [0, 0, 0])
            q[0] += cp
            q[1] += cs
            q[2] = max(q[2], copies)
        p = s = 0
        shared = self.__dict__.setdefault("_shared", {})
        for scope, (cp, cs, copies) in scoped.items():
            lim = limits.get((scope, name))
            if lim is not None and not f.inline:
                cap = lim * copies
                if cp + cs > cap:
                    shared[(scope, name)] = (cap, cp + cs)
                cp = min(cp, cap)
                cs = min(cs, cap - cp)
            p += cp
            s += cs
        return (p, s)

    def shared_instances(self, top="ctrain_top"):
        """{(scope, function): (instances, copies without the limit)} of every
        ALLOCATION limit that makes call sites share instances (UG1399:
        each instance then serves several calls, its inputs selected)."""
        self.instances(top)
        return dict(self.__dict__.get("_shared", {}))

    def fsm_owners(self, name, names=None, _stack=()):
        """[(non-inline function, concurrent copies)] whose FSM a sequential copy of
        inline function `name` becomes part of (an unrolled loop around the
        call makes concurrent copies of what depends on it; `names` as in
        copies_of)."""
        f = self.functions[name]
        deps = self.depends(f, names) if names is not None else None
        out = []
        for caller, callee, pos, args, _ in self.call_sites():
            if callee != name or caller in _stack:
                continue
            cf = self.functions[caller]
            if self.in_pipeline(cf, pos):
                continue
            arg_names = None
            if deps is not None:
                arg_names = []
                for i, (_, pname, _) in enumerate(f.params):
                    if pname in deps and i < len(args):
                        arg_names += _IDENT.findall(args[i])
            k = self.unroll_factor(cf, pos, arg_names)
            if not cf.inline:
                out.append((caller, k))
            else:
                out += [(h, k * j) for h, j in self.fsm_owners(caller, arg_names, _stack + (name,))]
        return out
