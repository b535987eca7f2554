"""A steady-state PromQL evaluator: what an expression's value settles at, given the series.

The demo exporter describes every series it serves by its labels (as Prometheus stores
them, with `job` and `instance`) and a steady value: a counter by its rate per second, a
gauge by its value. Once a rate window has filled with samples of that steady state, every
`rate()` equals the counter's rate and every gauge reads its value, so most expressions an
SRE writes for a KPI can be evaluated exactly, without a Prometheus: rates, aggregations,
arithmetic and comparisons with vector matching, `histogram_quantile`, `*_over_time`.

The demo exporter uses it to choose values (healthy, or just past a threshold) for custom
KPIs whose expression it does not otherwise understand, and the smoke test uses it to tell
which incidents would disturb which KPIs. Anything outside this subset raises Unsupported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import promql_parser as P

from stackgen.runtime.promql_math import Unsupported, arith, bucket_quantile, quantile

COUNTER, GAUGE = "counter", "gauge"


@dataclass(frozen=True)
class Series:
    labels: tuple  # sorted ((name, value), ...) including __name__
    kind: str  # COUNTER (value = rate per second) | GAUGE (value = value)
    value: float

    @property
    def name(self) -> str:
        return dict(self.labels).get("__name__", "")


def series(metric: str, labels: dict, kind: str, value: float) -> Series:
    return Series(tuple(sorted({**labels, "__name__": metric}.items())), kind, float(value))


@dataclass
class World:
    """Every series Prometheus would hold, in steady state."""

    series: list = field(default_factory=list)
    scrape_interval: float = 15.0
    now: float = 0.0


# A sample of an instant vector: (labels dict, value). A range vector element additionally
# carries the kind of its source series: (labels dict, kind, value, range seconds).


def _dur(td) -> float:
    return td.total_seconds() if td is not None else 0.0


def _op_name(op) -> str:
    return str(op).rsplit(".", 1)[-1]


def _match(m, labels: dict) -> bool:
    v = labels.get(m.name, "")
    op = _op_name(m.op)
    if op == "Equal":
        return v == m.value
    if op == "NotEqual":
        return v != m.value
    hit = re.fullmatch(m.value, v) is not None
    return hit if op == "Re" else not hit


def selected(world: World, vs) -> list[Series]:
    out = []
    for s in world.series:
        labels = dict(s.labels)
        if vs.name and labels.get("__name__") != vs.name:
            continue
        if all(_match(m, labels) for m in vs.matchers.matchers):
            out.append(s)
    return out


def metric_selectors(expr: str) -> list[tuple[str, list, bool]]:
    """(metric name, [(label, op, value) matchers], read through a rate-like function) for
    every selector of `expr`, in order."""
    out: list = []

    def walk(node, in_rate=False):
        if isinstance(node, P.VectorSelector):
            name = node.name
            matchers = []
            for m in node.matchers.matchers:
                if m.name == "__name__" and _op_name(m.op) == "Equal":
                    name = m.value
                else:
                    matchers.append((m.name, _op_name(m.op), m.value))
            if name:
                out.append((name, matchers, in_rate))
            return
        if isinstance(node, P.MatrixSelector):
            walk(node.vector_selector, in_rate)
        elif isinstance(node, P.Call):
            rate_like = node.func.name in RANGE_COUNTER_FUNCS
            for a in node.args:
                walk(a, rate_like)
        elif isinstance(node, P.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, P.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, (P.ParenExpr, P.UnaryExpr)):
            walk(node.expr, in_rate)
        elif isinstance(node, P.SubqueryExpr):
            walk(node.expr)

    walk(P.parse(expr))
    return out


RANGE_COUNTER_FUNCS = {"rate", "irate", "increase", "resets"}


def evaluate(expr: str, world: World):
    """The steady value of `expr`: a float (scalar) or a list of (labels, value)."""
    return _Eval(world).eval(P.parse(expr))


def values(expr: str, world: World) -> list[float]:
    """The values of `expr`'s result series (a scalar counts as one series)."""
    res = evaluate(expr, world)
    if isinstance(res, (int, float)):
        return [float(res)]
    return [v for _, v in res]


def _drop_name(labels: dict) -> dict:
    return {k: v for k, v in labels.items() if k != "__name__"}


def label_key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


class _Eval:
    def __init__(self, world: World):
        self.w = world

    def eval(self, node):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise Unsupported(f"{type(node).__name__} is not modelled")
        return method(node)

    # -- leaves -------------------------------------------------------------------------
    def _NumberLiteral(self, node):
        return float(node.val)

    def _StringLiteral(self, node):
        return node.val

    def _ParenExpr(self, node):
        return self.eval(node.expr)

    def _UnaryExpr(self, node):
        v = self.eval(node.expr)
        if isinstance(v, float):
            return -v
        return [(_drop_name(lb), -x) for lb, x in v]

    def _VectorSelector(self, node):
        out = []
        for s in selected(self.w, node):
            if s.kind == COUNTER:
                raise Unsupported(f"counter {s.name} read without rate(): its value depends on "
                                  "when it started")
            out.append((dict(s.labels), s.value))
        return out

    def _MatrixSelector(self, node):
        rng = _dur(node.range)
        return [(dict(s.labels), s.kind, s.value, rng)
                for s in selected(self.w, node.vector_selector)]

    def _SubqueryExpr(self, node):
        inner = self.eval(node.expr)
        if isinstance(inner, float):
            raise Unsupported("a subquery of a scalar")
        return [(lb, GAUGE, v, _dur(node.range)) for lb, v in inner]

    # -- functions ----------------------------------------------------------------------
    def _Call(self, node):
        name = node.func.name
        args = node.args
        if name in RANGE_COUNTER_FUNCS or name in ("delta", "idelta", "deriv"):
            out = []
            for lb, kind, v, rng in self.eval(args[0]):
                if name in ("rate", "irate"):
                    x = v if kind == COUNTER else 0.0
                elif name == "increase":
                    x = v * rng if kind == COUNTER else 0.0
                elif name == "resets":
                    x = 0.0
                else:  # delta, idelta, deriv: a steady gauge does not move
                    x = 0.0 if kind == GAUGE else (v * rng if name == "delta" else v)
                out.append((_drop_name(lb), x))
            return out
        if name.endswith("_over_time"):
            if name == "quantile_over_time":
                args = args[1:]  # every quantile of a steady gauge is its value
            out = []
            for lb, kind, v, rng in self.eval(args[0]):
                if kind == COUNTER:
                    raise Unsupported(f"{name} of a counter")
                n = max(1.0, math.floor(rng / self.w.scrape_interval))
                x = {"sum_over_time": v * n, "count_over_time": n,
                     "stddev_over_time": 0.0, "stdvar_over_time": 0.0,
                     "changes": 0.0}.get(name, v)
                if name == "present_over_time":
                    x = 1.0
                out.append((_drop_name(lb) if name != "last_over_time" else lb, x))
            return out
        if name == "histogram_quantile":
            return self._histogram_quantile(self.eval(args[0]), self.eval(args[1]))
        if name == "vector":
            return [({}, self._scalar(self.eval(args[0])))]
        if name == "scalar":
            v = self.eval(args[0])
            return v[0][1] if len(v) == 1 else math.nan
        if name == "time":
            return float(self.w.now)
        if name in ("absent", "absent_over_time"):
            v = self.eval(args[0])
            return [] if v else [({}, 1.0)]
        if name in ("sort", "sort_desc"):
            return self.eval(args[0])
        if name in ("label_replace", "label_join"):
            return self._labels(name, [self.eval(a) for a in args])
        unary = {
            "abs": abs, "ceil": math.ceil, "floor": math.floor, "exp": math.exp,
            "ln": lambda x: math.log(x) if x > 0 else -math.inf,
            "log2": lambda x: math.log2(x) if x > 0 else -math.inf,
            "log10": lambda x: math.log10(x) if x > 0 else -math.inf,
            "sqrt": lambda x: math.sqrt(x) if x >= 0 else math.nan,
            "sgn": lambda x: float((x > 0) - (x < 0)),
        }
        if name in unary:
            return [(_drop_name(lb), float(unary[name](x))) for lb, x in self.eval(args[0])]
        if name in ("clamp", "clamp_min", "clamp_max", "round"):
            vec = self.eval(args[0])
            extra = [self._scalar(self.eval(a)) for a in args[1:]]
            out = []
            for lb, x in vec:
                if name == "clamp":
                    x = min(max(x, extra[0]), extra[1])
                elif name == "clamp_min":
                    x = max(x, extra[0])
                elif name == "clamp_max":
                    x = min(x, extra[0])
                else:
                    to = extra[0] if extra else 1.0
                    x = math.floor(x / to + 0.5) * to
                out.append((_drop_name(lb), x))
            return out
        raise Unsupported(f"function {name}() is not modelled")

    def _scalar(self, v) -> float:
        if isinstance(v, float):
            return v
        raise Unsupported("expected a scalar")

    def _labels(self, name, args):
        vec = args[0]
        out = []
        for lb, x in vec:
            lb = dict(lb)
            if name == "label_replace":
                dst, repl, src, regex = args[1:5]
                m = re.fullmatch(regex, lb.get(src, ""))
                if m:
                    value = re.sub(r"\$(\d+)|\$\{(\w+)\}",
                                   lambda g: m.group(int(g.group(1)) if g.group(1)
                                                     else g.group(2)) or "", repl)
                    if value:
                        lb[dst] = value
                    else:
                        lb.pop(dst, None)
            else:
                dst, sep, *srcs = args[1:]
                lb[dst] = sep.join(lb.get(s, "") for s in srcs)
            out.append((lb, x))
        return out

    def _histogram_quantile(self, q, vec):
        q = self._scalar(q)
        groups: dict = {}
        for lb, x in vec:
            if "le" not in lb:
                continue
            le = lb["le"]
            rest = _drop_name({k: v for k, v in lb.items() if k != "le"})
            upper = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
            groups.setdefault(label_key(rest), []).append((upper, x))
        out = []
        for key, buckets in groups.items():
            out.append((dict(key), bucket_quantile(q, buckets)))
        return out

    # -- aggregation --------------------------------------------------------------------
    def _AggregateExpr(self, node):
        op = str(node.op)
        vec = self.eval(node.expr)
        if isinstance(vec, float):
            raise Unsupported(f"{op} of a scalar")
        mod = node.modifier
        labels_of = mod.labels if mod is not None else []
        without = mod is not None and _op_name(mod.type) == "Without"

        def group_key(lb):
            if without:
                return label_key({k: v for k, v in lb.items() if k not in labels_of
                             and k != "__name__"})
            return label_key({k: v for k, v in lb.items() if k in labels_of})

        groups: dict = {}
        for lb, x in vec:
            groups.setdefault(group_key(lb), []).append((lb, x))
        if op in ("topk", "bottomk"):
            k = int(self._scalar(self.eval(node.param)))
            out = []
            for members in groups.values():
                members = sorted(members, key=lambda m: m[1], reverse=op == "topk")
                out.extend(members[:k])
            return out
        out = []
        for key, members in groups.items():
            xs = [x for _, x in members]
            if op == "sum":
                v = sum(xs)
            elif op == "avg":
                v = sum(xs) / len(xs)
            elif op == "min":
                v = min(xs)
            elif op == "max":
                v = max(xs)
            elif op == "count":
                v = float(len(xs))
            elif op == "group":
                v = 1.0
            elif op in ("stddev", "stdvar"):
                mean = sum(xs) / len(xs)
                var = sum((x - mean) ** 2 for x in xs) / len(xs)
                v = math.sqrt(var) if op == "stddev" else var
            elif op == "quantile":
                v = quantile(self._scalar(self.eval(node.param)), xs)
            else:
                raise Unsupported(f"aggregation {op} is not modelled")
            out.append((dict(key), v))
        return out

    # -- binary operators ---------------------------------------------------------------
    def _BinaryExpr(self, node):
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        mod = node.modifier
        return_bool = bool(mod is not None and mod.return_bool)
        if op in ("and", "or", "unless"):
            return self._set_op(op, lhs, rhs, mod)
        comparison = op in ("==", "!=", ">", "<", ">=", "<=")
        if isinstance(lhs, float) and isinstance(rhs, float):
            v = arith(op, lhs, rhs)
            return float(v) if not comparison else float(bool(v))
        if isinstance(lhs, float) or isinstance(rhs, float):
            out = []
            vec, scalar_left = (rhs, True) if isinstance(lhs, float) else (lhs, False)
            s = lhs if scalar_left else rhs
            for lb, x in vec:
                a, b = (s, x) if scalar_left else (x, s)
                v = arith(op, a, b)
                if comparison:
                    if return_bool:
                        out.append((_drop_name(lb), float(bool(v))))
                    elif v:
                        out.append((lb, x))
                else:
                    out.append((_drop_name(lb), v))
            return out
        return self._vector_op(op, lhs, rhs, mod, comparison, return_bool)

    def _signature(self, lb: dict, mod) -> tuple:
        matching = mod.matching if mod is not None else None
        if matching is not None and _op_name(matching.type) == "Include":
            return label_key({k: v for k, v in lb.items() if k in matching.labels})
        ignored = set(matching.labels) if matching is not None else set()
        return label_key({k: v for k, v in lb.items() if k not in ignored and k != "__name__"})

    def _vector_op(self, op, lhs, rhs, mod, comparison, return_bool):
        card = _op_name(mod.card) if mod is not None else "OneToOne"
        one_side = {}
        many, one, flipped = lhs, rhs, False
        if card == "OneToMany":
            many, one, flipped = rhs, lhs, True
        for lb, x in one:
            sig = self._signature(lb, mod)
            if sig in one_side:
                raise Unsupported("many-to-many matching: duplicate series on the 'one' side")
            one_side[sig] = (lb, x)
        include = list(getattr(mod, "group_labels", None) or []) if mod is not None else []
        out = []
        seen = set()
        for lb, x in many:
            sig = self._signature(lb, mod)
            if sig not in one_side:
                continue
            if card == "OneToOne":
                if sig in seen:
                    raise Unsupported("one-to-one matching found several series on the left")
                seen.add(sig)
            olb, ox = one_side[sig]
            a, b = (ox, x) if flipped else (x, ox)
            v = arith(op, a, b)
            if card == "OneToOne":
                matching = mod.matching if mod is not None else None
                if matching is not None and _op_name(matching.type) == "Include":
                    res_lb = {k: lb[k] for k in matching.labels if k in lb}
                else:
                    res_lb = _drop_name(lb)
            else:
                res_lb = _drop_name(lb)
                for k in include:
                    if k in olb:
                        res_lb[k] = olb[k]
                    else:
                        res_lb.pop(k, None)
            if comparison:
                if return_bool:
                    out.append((res_lb, float(bool(v))))
                elif v:
                    out.append((lb if not flipped else lb, x if not flipped else x))
            else:
                out.append((res_lb, v))
        return out

    def _set_op(self, op, lhs, rhs, mod):
        if isinstance(lhs, float) or isinstance(rhs, float):
            raise Unsupported(f"{op} needs vectors on both sides")
        rsigs = {self._signature(lb, mod) for lb, _ in rhs}
        if op == "and":
            return [(lb, x) for lb, x in lhs if self._signature(lb, mod) in rsigs]
        if op == "unless":
            return [(lb, x) for lb, x in lhs if self._signature(lb, mod) not in rsigs]
        lsigs = {self._signature(lb, mod) for lb, _ in lhs}
        return list(lhs) + [(lb, x) for lb, x in rhs if self._signature(lb, mod) not in lsigs]
