"""HLS lint: what the project's HLS rules (docs/overlay.md, "HLS rules") forbid
and a C++ compiler accepts. Reads the synthesised sources (hls/*.cpp, *.h but
the C-sim-only files), keeps the synthesis branch of `__SYNTHESIS__`
conditionals, and reports:

  div-in-loop   integer `/` or `%` by a non-constant inside a pipelined or
                unrolled loop (or a pipelined function), including the bodies
                of the functions such a loop calls: a divider per iteration
                that breaks II=1 and costs dozens of LUT stages.
  null-pointer  a null pointer (0, NULL, nullptr, a cast 0, or a conditional
                with such a branch) passed for a pointer or array parameter,
                or a function testing a pointer parameter against null: HLS
                inlines units and resolves every pointer to one array at
                compile time; there is no null to test.
  dataflow-form a loop whose body is `#pragma HLS DATAFLOW` (UG1399 "Canonical
                Dataflow", dataflow in a loop) that is not in canonical form:
                the loop the only statement of its function, its header
                `for (int k = 0; k < n; k++)` with n a scalar parameter or a
                constant, its body only declarations without initializers and
                calls of processes, each process a function with `#pragma HLS
                INLINE off`, each channel (a local) passed to at most two
                processes (one writer, one reader). Otherwise HLS groups the
                statements into processes of its own choosing, or the stages
                run one after another.

A divisor is constant when every name in it is a macro or enumerator
(ALL_CAPS), a template parameter of the enclosing function or sizeof; casts
are looked through. Usage: python hls_lint.py <hls dir | files...>; exit 1 on
findings, one line each (file:line: rule: message).
"""
import os
import re
import sys

C_SIM_ONLY = {"csim_api.cpp", "csim_api.h", "csim_port.h"}
TOKEN = re.compile(r"\s*(?:(?P<id>[A-Za-z_]\w*)|(?P<num>(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*)"
                   r"|(?P<op>->|<<=|>>=|<<|>>|==|!=|<=|>=|&&|\|\||::|\+\+|--|[-+*/%&|^!=<>]=|[^\s\w]))")
CONST_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
TYPE_WORDS = {"int", "unsigned", "signed", "long", "short", "char", "bool", "const", "uint8_t", "int8_t",
              "uint16_t", "int16_t", "uint32_t", "int32_t", "uint64_t", "int64_t", "size_t", "wide_t",
              "q8_t", "acc_t", "prod_t", "sizeof"}
NULLS = {"0", "NULL", "nullptr"}


class Tok:
    __slots__ = ("text", "line", "kind")

    def __init__(self, text, line, kind):
        self.text, self.line, self.kind = text, line, kind

    def __repr__(self):
        return f"{self.text}@{self.line}"


def strip_comments(src):
    """Comments and string/char literals blanked, newlines kept."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def synthesis_lines(text):
    """(line number, text) of the lines synthesis compiles: the __SYNTHESIS__
    branch of conditionals on it, both branches of any other conditional.
    Preprocessor lines other than `#pragma HLS` are dropped."""
    stack = []  # per open #if: (is_synthesis_conditional, keep_this_branch)
    kept = []
    for no, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        d = re.match(r"#\s*(\w+)(.*)", s)
        if d:
            word, rest = d.group(1), d.group(2)
            if word in ("if", "ifdef", "ifndef"):
                syn = "__SYNTHESIS__" in rest
                keep = True
                if syn:
                    positive = word == "ifdef" or (word == "if" and "!" not in rest)
                    keep = positive
                stack.append([syn, keep])
            elif word in ("else", "elif") and stack:
                if stack[-1][0]:
                    stack[-1][1] = not stack[-1][1]
            elif word == "endif" and stack:
                stack.pop()
            elif word == "pragma" and all(k for _, k in stack):
                kept.append((no, s))
            continue
        if all(k for _, k in stack):
            kept.append((no, line))
    return kept


def tokenize(lines):
    toks = []
    for no, line in lines:
        if line.startswith("#pragma"):
            toks.append(Tok(line, no, "pragma"))
            continue
        pos = 0
        while pos < len(line):
            m = TOKEN.match(line, pos)
            if not m or m.end() == pos:
                break
            pos = m.end()
            kind = m.lastgroup
            toks.append(Tok(m.group(kind), no, kind))
    return toks


def matching(toks, i):
    """Index of the bracket closing toks[i]."""
    pair = {"(": ")", "[": "]", "{": "}"}
    open_, close, depth = toks[i].text, pair[toks[i].text], 0
    for j in range(i, len(toks)):
        if toks[j].text == open_:
            depth += 1
        elif toks[j].text == close:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def split_args(toks, lo, hi):
    """Top-level comma-separated token slices of toks[lo:hi]."""
    args, depth, start = [], 0, lo
    for j in range(lo, hi):
        t = toks[j].text
        if t in "([{" or (t == "<" and depth > 0):
            depth += 1
        elif t in ")]}":
            depth -= 1
        elif t == "," and depth == 0:
            args.append(toks[start:j])
            start = j + 1
    if hi > start:
        args.append(toks[start:hi])
    return args


class Function:
    def __init__(self, name, path, params, body, tparams):
        self.name, self.path = name, path
        self.params = params          # [(name, is_pointer)]
        self.body = body              # (open brace index, close brace index) in its file's tokens
        self.tparams = tparams        # template parameter names


class Source:
    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8") as f:
            self.toks = tokenize(synthesis_lines(strip_comments(f.read())))
        self.functions = []
        self.blocks = {}   # open brace index -> ("loop" | "function" | "block", close index)
        self._scan()

    def _scan(self):
        """Records every loop body and function body (self.blocks) and every
        function definition (self.functions)."""
        toks = self.toks
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.text in ("for", "while") and i + 1 < len(toks) and toks[i + 1].text == "(":
                close = matching(toks, i + 1)
                if close + 1 < len(toks) and toks[close + 1].text == "{":
                    self.blocks[close + 1] = ("loop", matching(toks, close + 1))
            elif t.text == "do" and i + 1 < len(toks) and toks[i + 1].text == "{":
                self.blocks[i + 1] = ("loop", matching(toks, i + 1))
            elif (t.kind == "id" and i + 1 < len(toks) and toks[i + 1].text == "("
                  and t.text not in ("if", "for", "while", "switch", "return", "sizeof")):
                i = self._definition(i)
            i += 1

    def _definition(self, i):
        """Records the function defined by the name at i (a call or a
        declaration is none); returns where the scan goes on: the body's
        open brace (to find its loops), else i."""
        toks = self.toks
        close = matching(toks, i + 1)
        k = close + 1
        while k < len(toks) and toks[k].text in ("const", "noexcept"):
            k += 1
        prev = toks[i - 1].text if i else ""
        if (k < len(toks) and toks[k].text == "{" and prev not in ("=", "return", ".", "->")
                and (i == 0 or toks[i - 1].kind == "id" or prev in ("*", "&", ">", "::"))):
            end = matching(toks, k)
            self.blocks[k] = ("function", end)
            self.functions.append(Function(toks[i].text, self.path, self._params(i + 2, close), (k, end),
                                           self._template_params(i)))
            return k  # keep scanning inside the body for loops
        return i

    def _params(self, lo, hi):
        out = []
        for arg in split_args(self.toks, lo, hi):
            ids = [t.text for t in arg if t.kind == "id"]
            if not ids:
                continue
            texts = [t.text for t in arg]
            name_at = max(k for k, t in enumerate(arg) if t.kind == "id")
            pointer = "*" in texts[:name_at] or "[" in texts[name_at:]
            out.append((arg[name_at].text, pointer))
        return out

    def _template_params(self, i):
        """Names in a `template <...>` shortly before the function name at i."""
        toks = self.toks
        for j in range(i - 1, max(-1, i - 40), -1):
            if toks[j].text in (";", "}", "{"):
                return set()
            if toks[j].text == "template" and j + 1 < len(toks) and toks[j + 1].text == "<":
                depth, names, k = 0, set(), j + 1
                while k < i:
                    if toks[k].text == "<":
                        depth += 1
                    elif toks[k].text == ">":
                        depth -= 1
                        if depth == 0:
                            break
                    elif toks[k].kind == "id" and toks[k + 1].text in (",", ">", "="):
                        names.add(toks[k].text)
                    k += 1
                return names
        return set()

    def enclosing(self, i):
        """(kind, open index) of the innermost block containing token i."""
        best = None
        for open_, (kind, close) in self.blocks.items():
            if open_ < i < close and (best is None or open_ > best[1]):
                best = (kind, open_)
        if best is None:
            return None
        # a plain { } block inside a loop body: the loop is found by the search above only
        # when it is the innermost; plain blocks are not recorded, so `best` is the loop.
        return best


def hls_words(t):
    """The words of token t after `#pragma HLS` (the first upper-cased: the
    pragma's kind), or [] when t is no HLS pragma."""
    words = t.text.split() if t.kind == "pragma" else []
    if len(words) < 3 or words[1].upper() != "HLS":
        return []
    return [words[2].upper()] + words[3:]


def _switched_off(words):
    return any(w.lower() in ("off", "off=true") for w in words[1:])


def hot_regions(src):
    """(open, close, what) of every pipelined or unrolled loop body and pipelined function."""
    out = []
    for i, t in enumerate(src.toks):
        words = hls_words(t)
        if not words or words[0] not in ("PIPELINE", "UNROLL"):
            continue
        kind = words[0]
        if _switched_off(words):
            continue
        enc = src.enclosing(i)
        if enc is None:
            continue
        open_, close = enc[1], src.blocks[enc[1]][1]
        out.append((open_, close, f"{kind.lower()} {'loop' if enc[0] == 'loop' else 'function'} "
                                  f"at line {t.line}"))
    return out


def divisor_is_constant(toks, j, consts):
    """Whether the operand after the division operator at toks[j] is constant."""
    k = j + 1
    # look through casts: ( type words [*] )
    while k < len(toks) and toks[k].text == "(":
        close = matching(toks, k)
        inner = toks[k + 1:close]
        if inner and all(t.kind == "id" and t.text in TYPE_WORDS or t.text in ("*", "::") for t in inner):
            k = close + 1
            continue
        operand = inner
        break
    else:
        operand = None
    if operand is None:
        if k >= len(toks):
            return True
        end = k + 1
        while end < len(toks):
            t = toks[end].text
            if t in (".", "->", "::") and end + 1 < len(toks):
                end += 2
            elif t in ("[", "("):
                end = matching(toks, end) + 1
            else:
                break
        operand = toks[k:end]
    names = [t.text for t in operand if t.kind == "id"]
    return all(CONST_NAME.match(n) or n in consts or n in TYPE_WORDS for n in names)


def null_kind(arg):
    """"typed" for NULL, nullptr or a cast 0 (a null pointer whatever the
    parameter), "zero" for a plain 0 (null only for a pointer parameter), else
    None; a conditional takes the kind of its null branch."""
    texts = [t.text for t in arg]
    if texts in (["NULL"], ["nullptr"]):
        return "typed"
    if texts == ["0"]:
        return "zero"
    if len(texts) >= 4 and texts[0] == "(" and "*" in texts and texts[-1] in NULLS and texts[-2] == ")":
        return "typed"
    if "?" in texts:
        q = texts.index("?")
        depth, colon = 0, None
        for k in range(q + 1, len(texts)):
            if texts[k] in "([":
                depth += 1
            elif texts[k] in ")]":
                depth -= 1
            elif texts[k] == ":" and depth == 0:
                colon = k
                break
        if colon is not None:
            kinds = {null_kind(arg[q + 1:colon]), null_kind(arg[colon + 1:])}
            return "typed" if "typed" in kinds else ("zero" if "zero" in kinds else None)
    return None


def lint(paths):
    """Every finding of both checks over the sources at `paths`, sorted."""
    sources = [Source(p) for p in paths]
    functions = {}
    for s in sources:
        for f in s.functions:
            functions.setdefault(f.name, []).append((s, f))
    return sorted(set(div_in_loop(sources, functions) + null_pointers(sources, functions)
                      + dataflow_form(sources, functions)))


def div_in_loop(sources, functions):
    """A division or remainder by a non-constant inside a pipelined or
    unrolled loop, following calls into the bodies of the functions called."""
    findings, reported = [], set()
    rel = os.path.relpath
    for s in sources:
        for open_, close, what in hot_regions(s):
            fn = next((f for f in s.functions if f.body[0] <= open_ <= f.body[1]), None)
            consts = fn.tparams if fn else set()
            todo = [(s, open_, close, consts, what)]
            seen = set()
            while todo:
                src, lo, hi, consts, via = todo.pop()
                if (src.path, lo) in seen:
                    continue
                seen.add((src.path, lo))
                toks = src.toks
                for j in range(lo + 1, hi):
                    t = toks[j]
                    if t.text in ("/", "%", "/=", "%=") and not divisor_is_constant(toks, j, consts):
                        where = f"{rel(src.path)}:{t.line}: div-in-loop: `{t.text}` by a non-constant"
                        if where not in reported:  # once per operator, with the first loop found
                            reported.add(where)
                            findings.append(f"{where} in the {via} ({rel(s.path)})")
                    if t.kind == "id" and j + 1 < hi and toks[j + 1].text in ("(", "<") and t.text in functions:
                        for fs, f in functions[t.text]:
                            todo.append((fs, f.body[0], f.body[1], f.tparams,
                                         f"{via} via {f.name}()"))
    return findings


def null_pointers(sources, functions):
    """Call sites passing a possibly-null pointer, and functions testing a
    pointer parameter for null (the synthesis has no null pointer)."""
    findings = []
    for s in sources:
        for j, t in enumerate(s.toks):
            if t.kind == "id" and t.text in functions:
                findings += _null_arguments(s, j, functions)
        for f in s.functions:
            findings += _null_tests(s, f)
    return findings


def _call_paren(toks, j):
    """Index of the `(` opening the arguments of a call named at j (past
    any template arguments), or None where j is not called."""
    k = j + 1
    if k < len(toks) and toks[k].text == "<":  # template arguments
        depth = 0
        while k < len(toks):
            depth += {"<": 1, ">": -1}.get(toks[k].text, 0)
            if depth == 0:
                break
            k += 1
        k += 1
    return None if k >= len(toks) or toks[k].text != "(" else k


def _null_arguments(s, j, functions):
    """Findings for the call at token j of source s: arguments that may be
    null where the callee takes a pointer (or the null is typed)."""
    toks, t = s.toks, s.toks[j]
    k = _call_paren(toks, j)
    if k is None:
        return []
    out = []
    for idx, arg in enumerate(split_args(toks, k + 1, matching(toks, k))):
        kind = null_kind(arg)
        if kind is None:
            continue
        pointer = any(idx < len(f.params) and f.params[idx][1] for _, f in functions[t.text])
        texts = [a.text for a in arg]
        if pointer or kind == "typed":
            out.append(f"{os.path.relpath(s.path)}:{t.line}: null-pointer: argument {idx + 1} of "
                       f"{t.text}() may be null ({' '.join(texts)})")
    return out


def _null_tests(s, f):
    """Findings for function f of source s testing a pointer parameter for
    null (`!p`, `p ?`, `p == nullptr`, `(p)` as a condition)."""
    toks, out = s.toks, []
    ptrs = {n for n, p in f.params if p}
    lo, hi = f.body
    for j in range(lo + 1, hi):
        name = toks[j].text
        if name not in ptrs or toks[j].kind != "id":
            continue
        before, after = toks[j - 1].text, toks[j + 1].text if j + 1 < hi else ""
        after2 = toks[j + 2].text if j + 2 < hi else ""
        tested = ((before in ("(", "!", "&&", "||") and after in (")", "&&", "||", "?"))
                  or after == "?" or (after in ("==", "!=") and after2 in NULLS))
        if tested:
            out.append(f"{os.path.relpath(s.path)}:{toks[j].line}: null-pointer: {f.name}() tests "
                       f"pointer parameter `{name}` for null")
    return out


def _is_dataflow(t):
    return hls_words(t)[:1] == ["DATAFLOW"]


def _statements(toks, lo, hi):
    """Top-level statements of toks[lo:hi] (pragmas dropped), split at `;`."""
    out, cur, depth = [], [], 0
    for t in toks[lo:hi]:
        if t.kind == "pragma":
            continue
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
        if t.text == ";" and depth == 0:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        out.append(cur)
    return out


def _inline_off(src, f):
    lo, hi = f.body
    return any(hls_words(t)[:1] == ["INLINE"] and _switched_off(hls_words(t)) for t in src.toks[lo:hi])


def _header(toks, loop_open):
    """Indices of the `for` and of its header's `(` and `)`, the loop body at loop_open."""
    close = loop_open - 1
    while toks[close].text != ")":
        close -= 1
    start, depth = close, 0
    while True:
        depth += {")": 1, "(": -1}.get(toks[start].text, 0)
        if depth == 0:
            return start - 1, start, close
        start -= 1


def _canonical_header(h, scalars):
    """`int k = 0; k < n; k++` with n in scalars or a constant (h: its texts)."""
    return (len(h) == 11 and h[0] == "int" and h[2:5] == ["=", "0", ";"] and h[5] == h[1]
            and h[6] == "<" and (h[7] in scalars or bool(CONST_NAME.match(h[7])))
            and h[8] == ";" and h[9] == h[1] and h[10] == "++")


def _call(st):
    """(callee, index of its argument list's `(`) when statement st is one
    call `f(...)` or `f<...>(...)`, else None."""
    texts = [t.text for t in st]
    if len(texts) < 3 or st[0].kind != "id":
        return None
    paren = 1
    if texts[1] == "<":   # a template's call
        depth, paren = 0, None
        for j in range(1, len(texts)):
            depth += {"<": 1, ">": -1}.get(texts[j], 0)
            if depth == 0:
                paren = j + 1
                break
    if paren is None or paren >= len(texts) or texts[paren] != "(" or texts[-1] != ")" \
            or matching(st, paren) != len(st) - 1:
        return None
    return texts[0], paren


def _declared(st):
    """Names a declaration without initializer declares, else None."""
    texts = [t.text for t in st]
    if "=" in texts or "(" in texts or len(st) < 2 or st[0].kind != "id":
        return None
    names, j = set(), 0
    while j < len(st):   # an id followed by `[`, `,` or the end
        if j > 0 and st[j].kind == "id" and (j + 1 == len(st) or texts[j + 1] in ("[", ",")):
            names.add(st[j].text)
        if texts[j] == "[":
            j = matching(st, j)
        j += 1
    return names


def _dataflow_loop(src, f, loop_open, functions):
    """Findings (line, message) of one loop DATAFLOW region (loop body at loop_open)."""
    toks, out = src.toks, []
    lo, hi = f.body
    close = src.blocks[loop_open][1]
    for_at, start, hdr = _header(toks, loop_open)
    line = toks[for_at].line
    label = toks[for_at - 2].text if toks[for_at - 1].text == ":" else None
    rest = [t.text for t in toks[lo + 1:for_at] + toks[close + 1:hi] if t.kind != "pragma"]
    if rest not in ([], [label, ":"]):
        out.append((line, f"{f.name}: the DATAFLOW loop is not the only statement of its function"))
    if not _canonical_header([t.text for t in toks[start + 1:hdr]],
                             {n for n, ptr in f.params if not ptr}):
        out.append((line, f"{f.name}: the DATAFLOW loop's header is not `for (int k = 0; k < n; k++)` "
                          "with n a scalar parameter or a constant"))
    locals_, uses = set(), {}
    for st in _statements(toks, loop_open + 1, close):
        call, names = _call(st), _declared(st)
        if call is not None:
            defs = functions.get(call[0], [])
            if not any(_inline_off(s2, g) for s2, g in defs):
                out.append((st[0].line, f"{f.name}: process {call[0]} is not a function with INLINE off"))
            for name in {t.text for t in st[call[1] + 1:-1] if t.kind == "id"} & locals_:
                uses[name] = uses.get(name, 0) + 1
        elif names is not None:
            locals_ |= names
        else:
            out.append((st[0].line, f"{f.name}: a DATAFLOW loop body holds only declarations "
                                    "without initializers and process calls"))
    out += [(line, f"{f.name}: channel {n} is passed to {k} processes (one writer, one reader)")
            for n, k in sorted(uses.items()) if k > 2]
    return out


def dataflow_form(sources, functions):
    """Loop DATAFLOW regions not in canonical form (see the module docstring)."""
    findings = []
    for src in sources:
        for i, t in enumerate(src.toks):
            if not _is_dataflow(t):
                continue
            enc = src.enclosing(i)
            if enc is None or enc[0] != "loop":
                continue
            f = next((g for g in src.functions if g.body[0] < i < g.body[1]), None)
            if f is None:
                continue
            for line, msg in _dataflow_loop(src, f, enc[1], functions):
                findings.append(f"{os.path.relpath(src.path)}:{line}: dataflow-form: {msg}")
    return findings


def source_paths(args):
    paths = []
    for a in args:
        if os.path.isdir(a):
            paths += [os.path.join(a, n) for n in sorted(os.listdir(a))
                      if n.endswith((".cpp", ".h")) and n not in C_SIM_ONLY]
        else:
            paths.append(a)
    return paths


def main(argv):
    if not argv:
        print("usage: hls_lint.py <hls dir | files...>", file=sys.stderr)
        return 2
    paths = source_paths(argv)
    findings = lint(paths)
    for line in findings:
        print(line)
    print(f"hls_lint: {len(paths)} files, {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
