"""The dense unit's tiling (conv.cpp conv_make_plan), its buffer check
(validation's FAULT_TILE) and the compiler's choice of it.

An instruction of CONV_FP/EB/WG carries its tiling (docs/isa.md "Dense
tiling"): `tile_g` column tiles (PE_COLS reduced channels) per group, `tile_br`
swept rows per band and, for CONV_EB with one group, `tile_rb` row tiles
whose weights load together, each clamped to the whole extent; 0 leaves a
field to the unit's rule (the largest g and br that fit; every row tile
in one block when they all fit, else one). `conv_plan` resolves them
exactly as the HLS does (perfmodel walks the loop nest with it; validation
rejects a plan that does not fit). `candidates` are the tilings the
compiler's roofline search (ctrain.compiler.choose_tiles) costs with the
cycle model besides the rule's.
"""
import os
from dataclasses import dataclass
from functools import lru_cache

from . import boards, overlay_src
from .isa import Flag, Op


def _header_defaults(name):
    """The CTRAIN_* defaults an HLS header sets under #ifndef (a board's
    header may override them)."""
    with open(os.path.join(overlay_src.hls_dir(), name)) as fh:
        return {k: int(v) for k, v in boards._DEFINE.findall(fh.read()) if v.isdigit()}


#: Dense unit buffers (pe_array.h) and PE lanes (types.h), unless a board sets them.
DENSE_DEFAULTS = dict(_header_defaults("pe_array.h"), **_header_defaults("types.h"))


def dense_macro(config, key):
    """A dense-unit macro (CONV_WCAP, CONV_TCAP, CONV_ACT, CONV_OUT,
    PE_LANES) of a board's BoardConfig: its header's value, else the HLS
    default (CONV_TCAP's is CONV_WCAP)."""
    if key in config.macros:
        return int(config.macros[key])
    return dense_macro(config, "CONV_WCAP") if key == "CONV_TCAP" else DENSE_DEFAULTS[key]


@dataclass(frozen=True)
class Buffers:
    """What a tiling must fit: the row and column tile sizes and the dense
    buffers (per PE: weights, tap accumulators; per lane and column bank:
    source bytes; per lane and row: band positions)."""
    pe_rows: int
    pe_cols: int
    conv_wcap: int      # FP's and EB's weights per PE
    conv_tcap: int      # WG's tap accumulators per PE
    conv_act: int
    conv_out: int
    conv_rb: int = 64
    pe_lanes: int = 1   # images per lane tile: units of a chunk (ConvPlan.cu)


@lru_cache(maxsize=None)
def buffers(name=None):
    """The Buffers of a board (default: the default board)."""
    c = boards.get(name or boards.DEFAULT_BOARD)
    return Buffers(c.pe_rows, c.pe_cols, dense_macro(c, "CONV_WCAP"), dense_macro(c, "CONV_TCAP"),
                   dense_macro(c, "CONV_ACT"), dense_macro(c, "CONV_OUT"), dense_macro(c, "CONV_RB"),
                   c.pe_lanes)


def entry_cap(f, b):
    """Entries a PE holds for the instruction (conv_make_plan's `cap` in
    conv.cpp): WG's tap accumulators (CONV_TCAP), else FP's and EB's
    weights (CONV_WCAP)."""
    return b.conv_tcap if f["op"] == Op.CONV_WG else b.conv_wcap


def _cdiv(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class ConvPlan:
    """The dense unit's tiling of an instruction (conv_make_plan in conv.cpp)."""
    rows: int
    cols: int
    oh: int
    ow: int
    sh: int
    sw: int
    ct: int
    g: int
    groups: int
    br: int
    bands: int
    slot: int
    rb: int
    fits: bool
    bm: bool = False   # block mode: one band, and FP/EB one group (WG any groups)
    cu: int = 1        # FP/EB with several groups: units (lane tile, band) per chunk


def _geometry(f):
    """(eb, rows, cols, oh, ow, sh, sw, kk, src_rows) of a conv instruction."""
    eb = f["op"] == Op.CONV_EB
    kh, s = f["k_h"], f["stride"]
    rows, cols = (f["c_in"], f["c_out"]) if eb else (f["c_out"], f["c_in"])
    oh, ow = (f["h_in"], f["w_in"]) if eb else (f["h_out"], f["w_out"])
    sh, sw = (f["h_out"], f["w_out"]) if eb else (f["h_in"], f["w_in"])

    def src_rows(r):
        """Source rows a band of r swept rows can need."""
        return min((r + kh - 2) // s + 1 if eb else (r - 1) * s + kh, sh)
    return eb, rows, cols, oh, ow, sh, sw, kh * f["k_w"], src_rows


def _rule_br(f, g, b, geo):
    """The largest band that fits with g column tiles (< 1 when none does)."""
    eb, _, _, oh, ow, sh, sw, _, _ = geo
    kh, s = f["k_h"], f["stride"]
    a = b.conv_act // (g * sw)
    br = min(oh, b.conv_out // ow)
    if a < sh:
        br = min(br, a * s - kh + 1 if eb else (a - kh) // s + 1)
    return br


def _bias_tap(f):
    """1 where a block keeps a bias tap beside its taps (WG with BIAS), else 0."""
    return 1 if f["op"] == Op.CONV_WG and f.get("flags", 0) & Flag.BIAS else 0


def _block_entries(f, g, kk):
    """Weights (FP, EB) or tap accumulators (WG) per PE of a row tile in
    block mode: g * kk (a group's column tiles; FP, EB one group, g = CT),
    and WG with BIAS the bias tap."""
    return g * kk + _bias_tap(f)


def _block_rows(f, b, rtiles):
    """Most row tiles a block may take for its bias table: FP's biases sit in
    a table of CONV_RB row tiles; otherwise every row tile."""
    return b.conv_rb if f["op"] == Op.CONV_FP and f.get("flags", 0) & Flag.BIAS else rtiles


def _block_most(f, b, rtiles, g, kk, npos):
    """The rule's block: the most row tiles whose weights (or tap
    accumulators) fit entry_cap, whose outputs fit CONV_OUT and whose biases
    fit the table (< 1 when none does)."""
    return min(rtiles, _block_rows(f, b, rtiles), entry_cap(f, b) // _block_entries(f, g, kk), b.conv_out // npos)


def conv_plan(f, b):
    """The tiling of a shape-checked CONV_* instruction (fields dict f) on
    buffers b (Buffers or perfmodel.Board)."""
    geo = _geometry(f)
    eb, rows, cols, oh, ow, sh, sw, kk, src_rows = geo
    ct = _cdiv(cols, b.pe_cols)
    tg, tb = f.get("tile_g", 0), f.get("tile_br", 0)
    # WG with biases keeps a bias tap beside a block's taps: the rule's one
    # group leaves room for it, so the rule always fits
    cap = entry_cap(f, b)
    g = min(ct, (cap - _bias_tap(f)) // kk, b.conv_act // (src_rows(1) * sw)) if tg == 0 else min(tg, ct)
    br = _rule_br(f, g, b, geo) if tb == 0 else min(tb, oh)
    a = b.conv_act // (g * sw)
    fits = br >= 1 and g * kk <= cap and br * ow <= b.conv_out and src_rows(br) <= a
    run, groups = max(br, 1), _cdiv(ct, g)
    bands = _cdiv(oh, run)
    rb = 1
    rtiles, tr = _cdiv(rows, b.pe_rows), f.get("tile_rb", 0)
    # block mode: one band; FP, EB also one group (their weights of every
    # column), WG any (a pass per block and group, the group's taps of the
    # block's row tiles: the column operand once per block and group)
    bm = bands == 1 and (groups == 1 or f["op"] == Op.CONV_WG)
    if bm:
        npos, wtile = oh * ow, _block_entries(f, g, kk)
        rb = _block_most(f, b, rtiles, g, kk, npos) if tr == 0 else min(tr, rtiles)
        fits = (fits and 1 <= rb <= _block_rows(f, b, rtiles) and rb * wtile <= cap
                and rb * npos <= b.conv_out)
        rb = max(rb, 1)
    elif eb and groups == 1:
        rb = (rtiles if rtiles * ct * kk <= b.conv_wcap else 1) if tr == 0 else min(tr, rtiles)
        fits = fits and rb * ct * kk <= b.conv_wcap
    cu = 1
    if f["op"] != Op.CONV_WG and groups > 1:   # units whose partial sums fit racc side by side
        cu = max(1, min(_cdiv(f["n"], b.pe_lanes) * bands, b.conv_out // (run * ow)))
    return ConvPlan(rows, cols, oh, ow, sh, sw, ct, g, groups, br, bands,
                    src_rows(run) * sw, rb, fits, bm, cu)


def tiling_ok(f, b):
    """FAULT_TILE's rule: the instruction's tiling fits the buffers (only
    CONV_* carry one; f shape-checked)."""
    return f["op"] not in (Op.CONV_FP, Op.CONV_EB, Op.CONV_WG) or conv_plan(f, b).fits


def _distinct_splits(n):
    """ceil(n / m) for m = 1..n, each value once, largest first: the tile
    sizes that give a distinct number of tiles (any other size has a smaller
    one with as many tiles, which fits wherever it does)."""
    out, m = [], 1
    while m <= n:
        v = _cdiv(n, m)
        out.append(v)
        m = _cdiv(n, v - 1) if v > 1 else n + 1   # the next m with a smaller ceil
    return out


#: Most groups a candidate may split the reduced channels into (FP, EB
#: reload a group's weights for every chunk of items; without the bound the choice on
#: CNV and LeNet-5 at batch 64, Pynq-Z2 and ZCU104, is the same): keeps the
#: search short.
MAX_GROUPS = 8


def _block(f, b, g):
    """tile_rb of g column tiles: EB with one group takes the fewest weight
    blocks that fit CONV_WCAP, balanced (more row tiles per block is fewer,
    longer bursts of the same bytes); else 0 (the field is unused)."""
    eb, rows, cols, _, _, _, _, kk, _ = _geometry(f)
    ct = _cdiv(cols, b.pe_cols)
    if not eb or g < ct:
        return 0
    rtiles, most = _cdiv(rows, b.pe_rows), max(b.conv_wcap // (ct * kk), 1)
    return _cdiv(rtiles, _cdiv(rtiles, most))


def _blocks(f, b, g):
    """tile_rb worth trying in block mode with g column tiles a group: the largest
    balanced block that fits (fewest blocks: the column operand is loaded
    once per block), the next smaller balanced one, and 1 (a row tile per
    block: the row tile > items nest); WG with several groups the largest
    only (the others never won on CNV, and each doubles the search)."""
    _, rows, cols, oh, ow, _, _, kk, _ = _geometry(f)
    rtiles = _cdiv(rows, b.pe_rows)
    most = _block_most(f, b, rtiles, g, kk, oh * ow)
    fit = [v for v in _distinct_splits(rtiles) if v <= most]
    if g < _cdiv(cols, b.pe_cols):   # WG with groups: its largest balanced block
        return fit[:1]
    return sorted(set(fit[:2] + [1]), reverse=True)


def _band_sizes(oh, ow, top, beat):
    """The band heights worth trying, at most top: per distinct band count
    its smallest br and, where the port's beat is known, the smallest br
    with as many bands whose band is whole beats (br * ow a multiple of the
    beat: on a beat-aligned plane its row writes need no merge, docs/overlay.md
    "Address generation unit"), which the smallest need not be."""
    out = []
    splits = _distinct_splits(oh)
    for i, br in enumerate(splits):
        if br > top:
            continue
        out.append(br)
        if beat:
            bands = _cdiv(oh, br)
            for v in range(br + 1, min(top, splits[i - 1] - 1 if i else oh) + 1):
                if _cdiv(oh, v) != bands:
                    break
                if (br * ow) % beat and (v * ow) % beat == 0:
                    out.append(v)
                    break
    return out


def candidates(f, b):
    """Every (tile_g, tile_br, tile_rb) worth trying: per distinct group
    count its smallest g (up to MAX_GROUPS groups), per distinct band count
    its smallest br (and its smallest whole-beat band, _band_sizes), the
    largest balanced EB weight block, where they fit; in block mode (one
    band, and FP, EB one group; WG any group) the blocks of _blocks."""
    geo = _geometry(f)
    _, _, cols, oh, ow, _, _, _, _ = geo
    out = []
    ct = _cdiv(cols, b.pe_cols)
    for g in _distinct_splits(ct):
        if _cdiv(ct, g) > MAX_GROUPS:
            break
        top, rb = _rule_br(f, g, b, geo), _block(f, b, g)
        if top < 1 or not conv_plan(dict(f, tile_g=g, tile_br=top, tile_rb=rb), b).fits:
            continue
        for br in _band_sizes(oh, ow, top, getattr(b, "ddr_beat", 0)):
            if br >= oh and (g >= ct or f["op"] == Op.CONV_WG):
                out.extend((g, br, v) for v in _blocks(f, b, g)
                           if conv_plan(dict(f, tile_g=g, tile_br=br, tile_rb=v), b).fits)
            else:
                out.append((g, br, rb))
    return out
