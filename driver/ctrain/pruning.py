"""Pruning by L2 norm: which weights (element-wise) or whole output filters
(structured) to drop, per layer or against one global threshold. Masks only
ever shrink: a pruned weight is never revived."""
import numpy as np

MODES = ("element", "filter")
SCOPES = ("layer", "global")


def _scores(w, mode):
    """L2 norm of each pruning unit: |w| per weight, ||w[co]|| / sqrt(fan-in)
    per filter."""
    if mode == "element":
        return np.abs(w).reshape(-1)
    flat = w.reshape(w.shape[0], -1)
    return np.sqrt(np.sum(flat.astype(np.float64) ** 2, axis=1) / flat.shape[1])


def _expand(keep_units, w, mode):
    if mode == "element":
        return keep_units.reshape(w.shape)
    return np.broadcast_to(keep_units.reshape((-1,) + (1,) * (w.ndim - 1)), w.shape).copy()


def _drop_lowest(scores, alive, n_drop):
    """Keep-mask dropping the n_drop lowest-scoring live units (stable order)."""
    keep = alive.copy()
    live = np.flatnonzero(alive)
    if n_drop > 0:
        order = live[np.argsort(scores[live], kind="stable")]
        keep[order[:n_drop]] = False
    return keep


def spared_rate(weights, sparsity, spare, mode="element"):
    """The fraction the layers after the first `spare` are pruned to so that
    `sparsity` of all the pruning units (weights or filters) go: the spared layers' share is
    carried by the others (CNV's first convolution is 1,728 of 1.5M weights:
    0.8 becomes 0.8009). Raises ValueError when the others cannot carry it."""
    if spare <= 0:
        return sparsity
    sizes = [_scores(w, mode).size for w in weights]
    rest = sum(sizes[spare:])
    rate = sparsity * sum(sizes) / rest if rest else 1.0
    if rate >= 1.0:
        raise ValueError(f"pruning {sparsity:g} of all {mode}s with the first {spare} layer(s) dense needs "
                         f"{rate:.0%} of the other layers': lower the fraction or spare no layer")
    return rate


def prune_masks(weights, sparsity, mode="element", scope="global", masks=None, spare=0):
    """Masks (bool, True = kept, shaped like each weight) pruning `sparsity` of
    the pruning units (weights or filters) of every layer, or of all layers
    together (`scope="global"`). Existing `masks` are respected and counted:
    the target is the total fraction pruned. Every layer keeps at least one unit.
    The first `spare` layers keep every weight, and the others are pruned
    harder so the total is still `sparsity` (spared_rate): the usual choice for
    a network's first layer, whose few weights see the raw image (Gale et al.,
    "The State of Sparsity in Deep Neural Networks", 2019)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if mode not in MODES or scope not in SCOPES:
        raise ValueError(f"prune mode must be one of {MODES} and scope one of {SCOPES}")
    if spare > 0:
        kept = [np.ones(w.shape, bool) for w in weights[:spare]]
        rate = spared_rate(weights, sparsity, spare, mode)
        return kept + prune_masks(weights[spare:], rate, mode, scope, masks[spare:] if masks else None)
    masks = masks or [np.ones(w.shape, bool) for w in weights]
    scores = [_scores(w, mode) for w in weights]
    alive = [(_scores(m.astype(np.float32), mode) > 0) for m in masks]
    if scope == "layer":
        keeps = []
        for s, a in zip(scores, alive):
            target = int(round(sparsity * s.size))
            keeps.append(_drop_lowest(s, a, min(target - (s.size - a.sum()), a.sum() - 1)))
    else:  # one magnitude threshold for all layers: redundant (wide fan-in) layers lose most
        all_s = np.concatenate(scores)
        all_a = np.concatenate(alive)
        target = int(round(sparsity * all_s.size))
        keep = _drop_lowest(all_s, all_a, target - (all_s.size - all_a.sum()))
        keeps, start = [], 0
        for s in scores:
            k = keep[start:start + s.size]
            if not k.any():  # a layer may not vanish: keep its strongest unit
                k[np.argmax(s)] = True
            keeps.append(k)
            start += s.size
    return [_expand(k, w, mode) & m for k, w, m in zip(keeps, weights, masks)]


def sparsity_of(masks):
    """Fraction pruned per layer and overall."""
    per = [1.0 - m.mean() for m in masks]
    total = 1.0 - sum(m.sum() for m in masks) / sum(m.size for m in masks)
    return per, total
