#!/usr/bin/env python3
"""Recomputes the reference values in the tests of telemetry/stats.

Needs numpy and scipy (Debian: apt-get install python3-scipy; the tables
were made with scipy 1.10.1). Run: python3 testdata/reference.py
"""
import numpy as np
from scipy import stats

print('== ci')
# Order-statistic CI of the median (Lehmann 1975; R asbio::ci.median):
# L = qbinom((1-conf)/2, n, 0.5); [x_(L), x_(n-L+1)]; coverage 1-2*pbinom(L-1).
def ci(x, conf=0.95):
    x = np.sort(x); n = len(x)
    L = int(stats.binom.ppf((1-conf)/2, n, 0.5))
    if L == 0: return None
    return x[L-1], x[n-L], 1-2*stats.binom.cdf(L-1, n, 0.5), np.median(x), np.mean(x), np.std(x, ddof=1)
for x in ([3.2,1.5,4.8,2.2,5.9,3.3,4.1,2.7,3.8,4.4],
          [10,12,11,13,15,14,9,16,8,17,12.5,11.5,13.5,10.5,14.5,9.5,15.5,8.5,16.5,7.5],
          [2.0,1.0,3.0,5.0,4.0,6.0],
          [2.0,1.0,3.0,5.0,4.0]):
    print(len(x), ci(x))
print([ (n, 1-2*0.5**n) for n in (5,6)])
print(ci(list(range(1,101)), 0.99))

print('== perm')
def st(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)
cases = {
 "3v3": ([1,2,3],[4,5,6]),
 "5v5 shift": ([10.1,10.3,9.8,10.0,10.2],[11.0,11.3,10.9,11.2,11.1]),
 "6v6 ties": ([12.1,11.8,12.5,12.0,11.9,12.3],[12.2,12.6,12.4,12.9,12.1,12.7]),
 "7v8": ([101,98,103,99,100,102,97],[104,99,106,103,101,105,102,100]),
 "4v4 same": ([5.0,5.2,4.9,5.1],[5.1,4.8,5.2,5.0]),
}
for name,(a,b) in cases.items():
    r = stats.permutation_test((b,a), st, vectorized=True, permutation_type='independent', alternative='two-sided', n_resamples=np.inf)
    print(f'{name!r}: stat={r.statistic!r} p={r.pvalue!r}')

print('== permmc')
def st(x, y, axis):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)
rng = np.random.default_rng(7)
a = np.round(rng.normal(100, 5, 15), 1); b = np.round(rng.normal(106, 5, 15), 1)
print(list(a)); print(list(b))
r = stats.permutation_test((b,a), st, vectorized=True, permutation_type='independent', alternative='two-sided', n_resamples=400000, batch=20000, random_state=1)
print(r.statistic, r.pvalue)

print('== mwu')
cases = {
 "3v3": ([1,2,3],[4,5,6]),
 "5v5 shift": ([10.1,10.3,9.8,10.0,10.2],[11.0,11.3,10.9,11.2,11.1]),
 "7v8": ([101,98,103,99,100,102,97],[104.5,99.5,106,103.5,101.5,105,102.5,100.5]),
 "interleaved 6v6": ([1.1,2.3,3.2,4.8,5.1,6.6],[1.5,2.1,3.9,4.2,5.7,6.3]),
}
for name,(a,b) in cases.items():
    e = stats.mannwhitneyu(a, b, alternative='two-sided', method='exact')
    s = stats.mannwhitneyu(a, b, alternative='two-sided', method='asymptotic')
    print(f'{name!r}: U={e.statistic!r} exact={e.pvalue!r} asym={s.pvalue!r}')
ties = {
 "6v6 ties": ([12.1,11.8,12.5,12.0,11.9,12.3],[12.2,12.6,12.4,12.9,12.1,12.7]),
 "7v8 ties": ([101,98,103,99,100,102,97],[104,99,106,103,101,105,102,100]),
 "all equal": ([3,3,3],[3,3,3,3]),
}
for name,(a,b) in ties.items():
    s = stats.mannwhitneyu(a, b, alternative='two-sided', method='asymptotic')
    print(f'{name!r}: U={s.statistic!r} asym={s.pvalue!r}')
# larger exact: 20 v 25
rng=np.random.default_rng(3)
a=np.round(rng.normal(50,3,20),3); b=np.round(rng.normal(52,3,25),3)
print(list(a)); print(list(b)); print(len(set(a)|set(b)))
e = stats.mannwhitneyu(a, b, alternative='two-sided', method='exact')
s = stats.mannwhitneyu(a, b, alternative='two-sided', method='asymptotic')
print(f'20v25: U={e.statistic!r} exact={e.pvalue!r} asym={s.pvalue!r}')

print('== mk')
def mk(y):
    y = np.asarray(y, float); n = len(y)
    s = sum(np.sign(y[j]-y[i]) for i in range(n-1) for j in range(i+1, n))
    _, t = np.unique(y, return_counts=True)
    var = (n*(n-1)*(2*n+5) - np.sum(t*(t-1)*(2*t+5))) / 18
    z = (s-1)/np.sqrt(var) if s > 0 else (s+1)/np.sqrt(var) if s < 0 else 0.0
    p = 2*stats.norm.sf(abs(z))
    return s, var, z, p
series = {
 "holy cross": [12.9,14.8,13.2,15.7,13.8,15.6,12.9,11.0,17.3,15.9,19.0,18.3,20.1,21.7],
 "decreasing ties": [5.0,4.8,4.8,4.9,4.5,4.6,4.5,4.5,4.2,4.3,4.0,4.1],
 "flat": [3.1,2.9,3.0,3.2,2.8,3.1,3.0,2.9,3.2,3.0],
}
for name, y in series.items():
    s, var, z, p = mk(y)
    tau = stats.kendalltau(np.arange(len(y)), y)
    print(f'{name!r}: S={s} var={var!r} z={z!r} p={p!r}  (kendalltau tau={tau.statistic!r} p_nocc={tau.pvalue!r})')
    r = stats.theilslopes(y, np.arange(len(y)), alpha=0.95)
    print(f'   theilslopes slope={r[0]!r} intercept={r[1]!r} lo={r[2]!r} hi={r[3]!r}')
x = [0, 1, 2, 2, 4, 5, 7, 8, 8, 10]
y = [1.0, 1.4, 2.1, 1.9, 3.2, 3.0, 4.4, 5.1, 4.7, 6.0]
r = stats.theilslopes(y, x, alpha=0.90)
print(f'xy ties 90%: slope={r[0]!r} intercept={r[1]!r} lo={r[2]!r} hi={r[3]!r}')

print('== mz')
# Iglewicz-Hoaglin modified Z: 0.6745*(x-med)/MAD
for x in ([0.5,0.30,0.29,0.31,0.30], [2.33269488,1.42195907,-0.57527698,-0.31293437,2.2948158,0.75813273,-1.0712388,-0.96394741,-1.15897446,1.10976285,20.0,-500.0]):
    x = np.array(x); med = np.median(x); mad = np.median(np.abs(x-med))
    print(list(0.6745*(x-med)/mad))
x = np.array([10.0]*7+[100.0]); med=np.median(x); print(list((x-med)/(1.253314*np.mean(np.abs(x-med)))))

print('== ediv')
from itertools import combinations
def Q(x, y):
    m, k = len(x), len(y)
    between = np.abs(np.subtract.outer(x, y)).sum()
    wx = sum(abs(a-b) for a, b in combinations(x, 2))
    wy = sum(abs(a-b) for a, b in combinations(y, 2))
    e = 2*between/(m*k) - wx/(m*(m-1)/2) - wy/(k*(k-1)/2)
    return m*k/(m+k)*e
y = [10.2, 9.8, 10.5, 10.1, 9.7, 10.4, 12.9, 13.4, 12.6, 13.1, 13.3, 12.8]
print([ (t, Q(np.array(y[:t]), np.array(y[t:]))) for t in range(3, len(y)-2)])

print('== ci, a day of samples (TestMedianCILongSeries)')
n = 86400; L = int(stats.binom.ppf(0.025, n, .5)); print(L, n-L+1, 1-2*stats.binom.cdf(L-1, n, .5))

print('== verdict line, base vs its first five runs (TestComparisonLine)')
base = [100.2, 99.8, 100.5, 99.6, 100.1, 99.9, 100.4, 99.7, 100.3, 100.0]
r = stats.permutation_test((base[:5], base), st, vectorized=True, permutation_type='independent',
                           alternative='two-sided', n_resamples=np.inf)
print(r.statistic, r.pvalue)
