# Toom-Cook matrices of Winograd minimal filtering F(m, r) (Lavin and Gray 2016): prints B^T, G and A^T
# for F(4, 3), F(2, 7) and F(7, 3) at the first a - 1 of the points 0, 1, -1, 2, -2, 1/2, -1/2 (and 3/2
# for F(7, 3)) and infinity, and for F(5, 3) at 1, -1, 2, -2, 1/2, -1/2 and infinity, each checked
# (1D and 2D) against direct correlation; src/Runtime/Layers/WinogradConv.cs holds the results.
# Usage: /usr/bin/python3 scripts/winograd.py [--csharp] (needs sympy and numpy: python3-sympy,
# python3-numpy). --csharp prints F(7, 3)'s and F(5, 3)'s 1D transforms as the C# written out in WinogradConv.cs.
import sympy as sp, numpy as np, sys
def matrices(m, r, points):
    a = m + r - 1
    assert len(points) == a - 1
    def E(n):  # alpha x n evaluation matrix of a degree n-1 polynomial, infinity row = leading coefficient
        rows = [[sp.Rational(p) ** k for k in range(n)] for p in points]
        rows.append([0] * (n - 1) + [1])
        return sp.Matrix(rows)
    G, AT, C = E(r), E(m).T, E(a).inv()
    BT = C.T
    # scale rows: B^T row j integer (times lcm of denominators), G row j divided by it
    for j in range(a):
        dens = [sp.fraction(sp.nsimplify(x))[1] for x in BT.row(j)]
        s = sp.ilcm(*dens) if dens else 1
        # make the first nonzero of the row positive
        first = next(x for x in BT.row(j) if x != 0)
        if first < 0: s = -s
        BT[j, :] = BT[j, :] * s
        G[j, :] = G[j, :] / s
    return BT, G, AT
def check(m, r, BT, G, AT):
    rng = np.random.default_rng(1)
    a = m + r - 1
    for _ in range(5):
        g = rng.standard_normal(r); d = rng.standard_normal(a)
        y = np.array(AT, dtype=float) @ ((np.array(G, dtype=float) @ g) * (np.array(BT, dtype=float) @ d))
        ref = np.array([sum(g[k] * d[i + k] for k in range(r)) for i in range(m)])
        assert np.allclose(y, ref), (y, ref)
    # 2D
    g = rng.standard_normal((r, r)); d = rng.standard_normal((a, a))
    B, Gf, A = np.array(BT, dtype=float), np.array(G, dtype=float), np.array(AT, dtype=float)
    Y = A @ ((Gf @ g @ Gf.T) * (B @ d @ B.T)) @ A.T
    ref = np.array([[np.sum(g * d[i:i + r, j:j + r]) for j in range(m)] for i in range(m)])
    assert np.allclose(Y, ref)
    print("ok", m, r, file=sys.stderr)
F73 = (7, 3, [0, 1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2), sp.Rational(3, 2)])
F53 = (5, 3, [1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2)])
def csharp(algorithms):
    """Each algorithm's 1D transforms as straight-line C#: y[i] = the row's nonzero entries times x,
    the entries named static vectors (C12, C1_90, ...) declared once for all of them first."""
    consts = {}
    def name(v):
        n = ("C%d" % v.p if v.q == 1 else "C%d_%d" % (v.p, v.q))
        consts[n] = v
        return n
    def method(title, M, doc):
        lines = ["    /// <summary>%s</summary>" % doc,
                 "    private static void %s(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)" % title, "    {"]
        at = lambda j, v: v if j == 0 else (" + %s" % v[1:] if j == 1 else " + %d * %s" % (j, v[1:]))
        lines.append("        var (%s) = (%s);" % (", ".join("x%d" % j for j in range(M.cols)),
                                                  ", ".join("x[o%s]" % ("" if j == 0 else at(j, "+s")) for j in range(M.cols))))
        for i in range(M.rows):
            terms = [(sp.Rational(M[i, j]), j) for j in range(M.cols) if M[i, j] != 0]
            text = ""
            for k, (v, j) in enumerate(terms):
                term = "x%d" % j if abs(v) == 1 else "%s * x%d" % (name(abs(v)), j)
                text += ("-" if v < 0 else "") + term if k == 0 else (" - " if v < 0 else " + ") + term
            lines.append("        y[yo%s] = %s;" % ("" if i == 0 else at(i, "+ys"), text or "Vector<T>.Zero"))
        lines.append("    }")
        return "\n".join(lines)
    methods = []
    for (m, r, pts) in algorithms:
        BT, G, AT = matrices(m, r, pts)
        check(m, r, BT, G, AT)
        a, f, t = m + r - 1, "F(%dx%d, %dx%d)" % (m, m, r, r), "%dx%d" % (m, r)
        methods += [method("Data" + t, BT, "B^T x for %s: %d values in, %d out." % (f, a, a)),
                    method("DataAdjoint" + t, BT.T, "B x for %s (the adjoint of Data%s)." % (f, t)),
                    method("Kernel" + t, G, "G g for %s: %d values in, %d out." % (f, r, a)),
                    method("KernelAdjoint" + t, G.T, "G^T u for %s: %d values in, %d out." % (f, a, r)),
                    method("Output" + t, AT, "A^T x for %s: %d values in, %d out." % (f, a, m)),
                    method("OutputAdjoint" + t, AT.T, "A y for %s: %d values in, %d out (the adjoint of Output%s)." % (f, m, a, t))]
    declared = ["%s = %s" % (n, "new(T.CreateChecked(%d))" % v.p if v.q == 1 else "new(T.CreateChecked(%d) / T.CreateChecked(%d))" % (v.p, v.q))
                for n, v in sorted(consts.items())]
    print("    private static readonly Vector<T> " + ",\n        ".join(declared) + ";\n")
    print("\n\n".join(methods))
if "--csharp" in sys.argv:
    csharp([F73, F53])
    sys.exit(0)
for (m, r, pts) in [(4, 3, [0, 1, -1, 2, -2]), (2, 7, [0, 1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2)]), F73, F53]:
    BT, G, AT = matrices(m, r, pts)
    check(m, r, BT, G, AT)
    print(f"F({m},{r})"); print("BT", BT.tolist()); print("G", G.tolist()); print("AT", AT.tolist())
