# Toom-Cook matrices of Winograd minimal filtering F(m, r) (Lavin and Gray 2016): prints B^T, G and A^T
# for F(4, 3) and F(2, 7) at the points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity, each checked
# (1D and 2D) against direct correlation; src/Runtime/Layers/WinogradConv.cs holds the results.
# Usage: /usr/bin/python3 scripts/winograd.py (needs sympy and numpy: python3-sympy, python3-numpy).
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
for (m, r, pts) in [(4, 3, [0, 1, -1, 2, -2]), (2, 7, [0, 1, -1, 2, -2, sp.Rational(1, 2), -sp.Rational(1, 2)])]:
    BT, G, AT = matrices(m, r, pts)
    check(m, r, BT, G, AT)
    print(f"F({m},{r})"); print("BT", BT.tolist()); print("G", G.tolist()); print("AT", AT.tolist())
