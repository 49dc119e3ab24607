"""Which path of the sparse unit takes an instruction, and the position-
parallel path's tiling (sconv.cpp sconv_unit, sp_rows_first, spp_make_plan,
spp_chunks): the sparse unit's counterpart of tiling.py, below both the
cycle model (perfmodel walks the path's loops with the plan) and validation
(a board built without the row-tile path refuses what only that path runs,
FAULT_TILE: validate.sparse_refused). Every constant is the board's build's
HLS macro (hls_source), read once per board.
"""
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from . import boards, hls_source
from .isa import Flag, Op
from .overlay_src import config_dir


@dataclass(frozen=True)
class SparseUnit:
    """A board's sparse unit as its build sees it (sconv.h, sconv.cpp)."""
    name: str
    rows: bool        # the row-tile path built (CTRAIN_SPARSE_ROWS)
    P: int            # position PEs, L x R x C (SP_P)
    wdepth: int       # window words per bank (SP_WD)
    odepth: int       # output / error words per bank (SP_OD)
    list: int         # kept weights of a chunk on chip (SP_LIST)
    beat: int         # bytes per DDR beat (CTRAIN_DDR_BEAT)
    pos_pair: int     # FP/EB tiles per step (SP_POS_PAIR)
    pos_kpair: int    # FP/EB kept weights per step (SP_POS_KPAIR)
    wg_pair: int      # WG kept weights per step (SP_WG_PAIR)
    skip_beats: int   # beats a band's plane read may skip (SPP_SKIP_BEATS)
    img_beats: int    # an image's cost per chunk in the plan (SPP_IMG_BEATS)
    join_imgs: int    # tail images whose partial beats join (SPP_JOIN_IMGS)


@lru_cache(maxsize=None)
def _unit(name):
    m = hls_source.Macros(os.path.join(config_dir(), name + ".h"), hls_source.source_files())
    return SparseUnit(name, bool(m.value("CTRAIN_SPARSE_ROWS")), m.value("SP_P"), m.value("SP_WD"),
                      m.value("SP_OD"), m.value("SP_LIST"), m.value("CTRAIN_DDR_BEAT"),
                      m.value("SP_POS_PAIR"), m.value("SP_POS_KPAIR"), m.value("SP_WG_PAIR"),
                      m.value("SPP_SKIP_BEATS"),
                      m.value("SPP_IMG_BEATS"), m.value("SPP_JOIN_IMGS"))


def unit(board=None):
    """The SparseUnit of `board`: a name, an object with its .name (a
    perfmodel.Board), or None (the default board)."""
    name = getattr(board, "name", board) or boards.DEFAULT_BOARD
    boards.get(name)   # an unknown name: boards' one-line error
    return _unit(name)


def _cdiv(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class PosPlan:
    """The position-parallel path's tiling (spp_make_plan in sconv.cpp)."""
    eb: bool
    wg: bool
    n: int
    rows: int
    red: int
    kh: int
    kw: int
    ey: int
    ex: int
    sh: int
    sw: int
    oh: int
    ow: int
    pw: int
    nb: int
    br: int
    bands: int
    hw: int
    qimg: int
    cs: int
    T: int
    nmax: int
    lii: int
    sii: int
    tail: int   # window padding past the last slot
    span: bool    # bands read as whole planes, the other rows skipped: window
    rspan: bool   # ... and the row buffer's reads
    join: bool    # written pieces join their shared partial beats (spp_plan.join)
    tb: int = 0    # a tail band after the bands: its swept rows (0: none)
    nbt: int = 1   # ... and its images an item
    hwt: int = 0   # ... its slot rows
    qimgt: int = 0   # ... and image slot

    @property
    def banded(self):
        """Bands (or a tail band) that are not the whole plane."""
        return self.bands > 1 or self.tb > 0


def _spp_ii(length, pitch, rpp, u):
    """Steps per plane segment of a beat between DDR and a banked buffer of
    row pitch `pitch` whose rows hold `length` bytes, `rpp` rows a plane
    (spp_ii): 1 when the segment's addresses span at most 2 W (the V path
    of spp_rd/spp_wr), else 0 (the position-parallel path refuses the
    instruction)."""
    W = u.beat
    rows = min((W - 2) // length + 2, rpp)
    return 1 if W - 1 + (rows - 1) * (pitch - length) <= 2 * W else 0


def step_pairs(u, wg):
    """(tiles, kept weights) a position-path step takes (sp_steps): WG one
    tile and SP_WG_PAIR kept weights; FP, EB SP_POS_PAIR tiles and
    SP_POS_KPAIR kept weights (one of the two is 1)."""
    return (1, u.wg_pair) if wg else (u.pos_pair, u.pos_kpair)


def _pos_geometry(f):
    """(eb, wg, rows, red, sh, sw, oh, ow, ey, ex) of a stride-1 sparse
    instruction as the position-parallel path sees it, or None when its
    padding does not fit the window's shared-padding layout."""
    eb, wg = f["op"] == Op.SCONV_EB, f["op"] == Op.SCONV_WG
    kh, kw, p = f["k_h"], f["k_w"], f["pad"]
    rows, red = (f["c_in"], f["c_out"]) if eb else (f["c_out"], f["c_in"])
    sh, sw = (f["h_out"], f["w_out"]) if eb else (f["h_in"], f["w_in"])
    oh, ow = (f["h_in"], f["w_in"]) if eb else (f["h_out"], f["w_out"])
    ey, ex = (kh - 1 - p, kw - 1 - p) if eb else (p, p)
    if ey < 0 or ex < 0 or ey > kh - 1 or ex > kw - 1:
        return None
    return eb, wg, rows, red, sh, sw, oh, ow, ey, ex


class _BandGeo(NamedTuple):
    """What the band-count search reads of an instruction (spp_make_plan):
    its shape as the position path sees it, tp tiles a step group, the
    kept weights' steps in 64s (cnt64), the chunks its lists take at least
    (kl), whether it reads masks (EB with RELU_MASK) and whether it is WG."""
    n: int
    rows: int
    red: int
    sh: int
    sw: int
    kh: int
    oh: int
    ow: int
    tp: int
    cnt64: int
    kl: int
    mask: bool
    wg: bool
    u: SparseUnit


def _band_geo(n, rows, red, sh, sw, kh, oh, ow, count, u, tp, kp, mask, wg):
    """The _BandGeo of an instruction with `count` kept weights, kp a step."""
    return _BandGeo(n, rows, red, sh, sw, kh, oh, ow, tp, _cdiv(_cdiv(count, kp), 64), _cdiv(count, u.list),
                    mask, wg, u)


def _spans(sh, sw, slot, u):
    """spp_spans: a band whose slot has `slot` rows of an sh x sw source
    plane reads its image's whole planes, the other rows skipped (it skips
    at most SPP_SKIP_BEATS a plane)."""
    return sh - slot <= 0 or (sh - slot) * sw <= u.skip_beats * u.beat


def _window_fits(red, cs, t, kh, kw, pw, u):
    """spp_window_fits: channel slots cs apart and t tiles fit the window
    and the output buffer (the last channel read to the last tile's end and
    the farthest tap)."""
    return t <= u.odepth and (red - 1) * cs + t * u.P + (kh - 1) * pw + kw - 1 <= u.P * u.wdepth


def _band_beats(geo, slot):
    """Window beats of an image's band whose slot has `slot` rows
    (spp_band_beats): its planes in one burst where the band spans them
    (_spans), else its rows a burst per channel; SPP_SKIP_BEATS a burst."""
    W, skip = geo.u.beat, geo.u.skip_beats
    if _spans(geo.sh, geo.sw, slot, geo.u):
        return geo.red * geo.sh * geo.sw // W + skip
    return geo.red * (slot * geo.sw // W + skip)


def _band_cost(geo, B, br, T, tb=0, nbt=1, Tt=0):
    """(estimate, bound) of B bands of br swept rows and T tiles an image
    band, and where tb > 0 a tail band of tb rows after them, nbt images and
    Tt tiles an item (sconv.cpp spp_band_cost), in units of 64: the PE
    steps (ceil(T / tp) step groups per cnt64 an item, a tail item's of Tt),
    the window reads (per chunk of rows, image and band: _band_beats) and
    the swept rows' bursts (FP, EB written; WG errors and EB masks read);
    bound where the steps are at least either channel's beats."""
    n, rows, _, _, _, kh, oh, ow, tp, cnt64, kl, mask, wg, u = geo
    W, skip = u.beat, u.skip_beats
    Tt = Tt if tb else T
    comp = (n * B * _cdiv(T, tp) + (_cdiv(n, nbt) * _cdiv(Tt, tp) if tb else 0)) * cnt64
    chunks = max(_cdiv(rows, u.odepth // max(T, Tt)), kl)
    v = B * _band_beats(geo, br + kh - 1) + (_band_beats(geo, tb + kh - 1) if tb else 0)
    rd = chunks * _cdiv(n * v, 64)
    rio = _cdiv(n * rows * (oh * ow // W + (B + (1 if tb else 0)) * skip), 64)
    wr = 0 if wg else rio
    if wg or mask:
        rd += rio
    return max(comp, rd, wr), comp >= rd and comp >= wr


def _band_count(geo, fits, bands, br):
    """(bands, band rows) of spp_make_plan's band-count search: up to twice
    the tallest band's count, each balanced height once, a count taken
    where its _band_cost is lower and bound by its steps (a tie keeps the
    fewer). fits(nb, br): (fits, tiles)."""
    cost, _ = _band_cost(geo, bands, br, fits(1, br)[1])
    for cb in range(bands + 1, min(2 * bands, geo.oh) + 1):
        cbr = _cdiv(geo.oh, cb)
        ok, t = fits(1, cbr)
        if _cdiv(geo.oh, cbr) != cb or not ok:
            continue
        c, bound = _band_cost(geo, cb, cbr, t)
        if bound and c < cost:
            cost, bands, br = c, cb, cbr
    return bands, br


def _pos_tiling(n, rows, red, sh, sw, kh, kw, oh, ow, ey, pw, count, u, tp=1, kp=1, eb_mask=False,
                wg=False):
    """(images per item, band rows, bands, tiles per item) of spp_make_plan:
    the tallest band that fits one image (balanced), or up to twice as many
    bands where _band_cost's estimate is lower and bound by its steps (then
    rounded up to whole beats of the swept plane where the same bands fit in
    as many tiles),
    then the images per item
    with the fewest estimated cycles, max(items x ceil(T / tp) x
    ceil(count / kp), chunks x (the batch's window beats + SPP_IMG_BEATS per
    image)), both in units of 64 (tp: tiles per step, SP_POS_PAIR for FP
    and EB; kp: kept weights per step, SP_WG_PAIR for WG, SP_POS_KPAIR for
    FP and EB); None when not even one row fits."""
    P, OD = u.P, u.odepth

    def fits(nb, br):
        slot = br + kh - 1 - (ey if br == oh else 0)   # spp_slot_rows
        pos = nb * slot * pw
        # tiles up to the last image's last output position (its slot's
        # junk rows and columns past it are never outputs)
        t = _cdiv(pos - (slot - br + 1) * pw + ow, P)
        return _window_fits(red, pos, t, kh, kw, pw, u), t
    br = oh
    while br >= 1 and not fits(1, br)[0]:
        br -= 1
    if br < 1:
        return None
    tallest = br
    bands = _cdiv(oh, br)
    br = _cdiv(oh, bands)
    geo = _band_geo(n, rows, red, sh, sw, kh, oh, ow, count, u, tp, kp, eb_mask, wg)
    cnt64, kl = geo.cnt64, geo.kl
    if bands > 1:
        bands, br = _band_count(geo, fits, bands, br)
    if bands > 1:   # band boundaries on beat boundaries (no read-merged partial beats)
        low = ow & -ow
        m = 1 if low >= u.beat else u.beat // low
        bra = -(-br // m) * m
        if bra != br and bra * (bands - 1) < oh and fits(1, bra) == (True, fits(1, br)[1]):
            br = bra
    tail = _tail_band(geo, fits, tallest, bands, br, kw, pw) if n > 1 and not fits(2, br)[0] else None
    if tail is not None:
        h, th, tb, nbt = tail
        return 1, h, oh // h, th, tb, nbt
    # in units of 64 kept weights and beats, as the HLS (narrow products)
    wb = _cdiv(n * red * sh * sw // u.beat + n * u.img_beats, 64)
    best = bt = bc = 0
    for nb in range(1, n + 1):
        ok, t = fits(nb, br)
        if not ok:
            break
        cost = max(_cdiv(n, nb) * bands * _cdiv(t, tp) * cnt64, max(_cdiv(rows, OD // t), kl) * wb)
        if best == 0 or cost < bc:
            best, bt, bc = nb, t, cost
    return best, br, bands, bt, 0, 1


def bands_join(oh, bands, br, ow, W):
    """agu.h agu_bands_join (the dense unit's bands too): bands of br rows
    (the last oh - (bands - 1) br) of a plane ow wide make pieces a beat
    long at least, as joins need."""
    return bands > 1 and (oh - (bands - 1) * br) * ow >= W


def _tail_joins(u, ow, br, tb, nbt):
    """spp_tail_joins: main bands of br rows and a tail of tb rows, nbt
    images an item, join their pieces' partial beats (every piece a beat at
    least, at most SPP_JOIN_IMGS tail images held apart)."""
    return nbt <= u.join_imgs and br * ow >= u.beat and tb * ow >= u.beat


def _tail_band(geo, fits, tallest, bands, br, kw, pw):
    """spp_make_plan's tail band (session 35), where one image an item is
    all the bands take: (main band rows h, the plan's tiles, tail rows oh
    mod h, tail images an item) of the main heights from the tallest band
    down to half of it, with every count of tail images within the window
    (a tail item its own tiles, the plan's T the larger) where every piece
    of a plane is whole beats (h x ow and the plane), else up to
    SPP_JOIN_IMGS whose partial beats join (_tail_joins), the one whose
    _band_cost is lowest, below the plan's and bound by its steps; None
    when none is."""
    u, oh, ow, kh, red = geo.u, geo.oh, geo.ow, geo.kh, geo.red
    P = u.P
    whole_beats = oh * ow % u.beat == 0
    cost, _ = _band_cost(geo, bands, br, fits(1, br)[1])
    best = None
    for h in range(min(tallest, oh - 1), 0, -1):
        if 2 * h < tallest:
            break
        bm = oh // h
        tb = oh - bm * h
        ok, th = fits(1, h)
        whole = whole_beats and h * ow % u.beat == 0
        if not (tb and ok and (whole or _tail_joins(u, ow, h, tb, 2))):
            continue
        qt, qm = (tb + kh - 1) * pw, (h + kh - 1) * pw
        for nbt in range(2, (geo.n if whole else min(geo.n, u.join_imgs)) + 1):
            tt = _cdiv(nbt * qt - kh * pw + ow, P)
            T = max(th, tt)
            if not _window_fits(red, max(nbt * qt, qm), T, kh, kw, pw, u):   # both grow with nbt
                break
            c, bound = _band_cost(geo, bm, h, th, tb, nbt, tt)
            if bound and c < cost:
                cost, best = c, (h, T, tb, nbt)
    return best


def pos_plan(f, board):
    """The PosPlan of a sparse instruction on `board` (a name, or an object
    with its .name), or None when the position-parallel path does not take
    it (the row-tile path's, where the board has one)."""
    u = unit(board)
    geo = _pos_geometry(f) if f["stride"] == 1 else None
    if geo is None:
        return None
    eb, wg, rows, red, sh, sw, oh, ow, ey, ex = geo
    kh, kw, n = f["k_h"], f["k_w"], f["n"]
    pw = sw + ex   # a row's right padding is the next row's left padding
    tp, kp = step_pairs(u, wg)
    tiling = _pos_tiling(n, rows, red, sh, sw, kh, kw, oh, ow, ey, pw, f["count"], u, tp, kp,
                         eb and bool(f.get("flags", 0) & Flag.RELU_MASK), wg)
    if tiling is None:
        return None
    best, br, bands, bt, tb, nbt = tiling
    hw = br + kh - 1 - (ey if br == oh else 0)   # spp_slot_rows: a whole plane shares its bottom padding
    hwt = tb + kh - 1   # the tail is never the whole plane
    banded = bands > 1 or tb > 0
    skip = u.skip_beats * u.beat   # bytes a plane may skip
    lii, sii = _spp_ii(sw, pw, sh, u), _spp_ii(ow, pw, oh, u)
    if not (lii and sii):   # a beat's plane segment wider than V
        return None
    # the tail's images in the main bands' channel slot, where they need more
    cs = nbt * hwt * pw if tb and nbt * hwt * pw > hw * pw else best * hw * pw
    # one image an item, every piece a beat at least: the pieces' shared beats join
    join = best == 1 and (_tail_joins(u, ow, br, tb, nbt) if tb else bands_join(oh, bands, br, ow, u.beat))
    return PosPlan(eb, wg, n, rows, red, kh, kw, ey, ex, sh, sw, oh, ow, pw, best, br, bands,
                   hw, hw * pw, cs, bt, u.odepth // bt, lii,
                   sii, (0 if banded else ey * pw) + ex,
                   banded and _spans(sh, sw, br + kh - 1, u),
                   banded and (oh - br) * ow <= skip, join, tb, nbt, hwt, hwt * pw)


def rows_first(f):
    """sp_rows_first (sconv.cpp): a fully connected instruction (1x1 planes
    on both sides) goes to the row-tile path without asking the
    position-parallel one."""
    return f["h_in"] == f["w_in"] == f["h_out"] == f["w_out"] == 1


def list_pointers(f, index):
    """Every list's first entry and one past its last, as the position-
    parallel chunking walks them (spp_chunks): rowptr (FP, WG: a list per
    output row) or every k_h*k_w-th tptr (EB: per input channel), from the
    instruction's index arrays (rowptr, col, tptr, tpos, trow)."""
    rowptr, _, tptr, _, _ = index
    if f["op"] == Op.SCONV_EB:
        return np.asarray(tptr, np.int64)[::f["k_h"] * f["k_w"]]
    return np.asarray(rowptr, np.int64)


def longest_list(f, index):
    """The longest kept-weight list of that chunking (list_pointers)."""
    ptr = list_pointers(f, index)
    return int(np.diff(ptr).max()) if ptr.size > 1 else 0


def lists_refused(f, board, index):
    """The part of `refused` only the index contents decide: on a board
    without the row-tile path, a list longer than SP_LIST (for an
    instruction whose shape the position path takes)."""
    u = unit(board)
    return not u.rows and longest_list(f, index) > u.list


def refused(f, board=None, index=None):
    """Whether `board`'s sparse unit refuses instruction `f` (fields; only
    an SCONV_* one can be) with FAULT_TILE: only a board built without the row-tile path does,
    for what the position-parallel path does not take: a fully connected
    instruction, one it cannot plan or, given its index arrays (`index`:
    rowptr, col, tptr, tpos, trow), one whose longest list exceeds SP_LIST
    (sconv_unit, after spp_chunks and before anything is written)."""
    u = unit(board)
    if u.rows or f["op"] not in (Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG):
        return False
    if rows_first(f) or pos_plan(f, u.name) is None:
        return True
    return index is not None and lists_refused(f, u.name, index)
